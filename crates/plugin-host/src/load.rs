//! Loading one plugin: read the file, check the pinned digest, compile, find the kind and WIT
//! version from the export names, refuse imports outside the kind's world, link (typed
//! `InstancePre`), then call `metadata` and `init(config)` once so a bad plugin or config fails
//! at startup or reload, not on the first request.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use wasmtime::component::Component;

use super::bindings::{self, auth, policy, secret, WIT_VERSION};
use super::engine::{PluginEngine, MAX_MEMORY_MIB, POOL_INSTANCES};
use super::error::{LoadErrorKind, PluginError};
use super::grants::{Grants, Origin};
use super::state::CallState;
use super::warm::Warm;
use portcullis_config::PluginConfig;

/// Default `limits.memoryMiB`.
pub const DEFAULT_MEMORY_MIB: u64 = 16;
/// Default `limits.timeoutMs`.
pub const DEFAULT_TIMEOUT_MS: u64 = 100;
/// Largest accepted `limits.timeoutMs`.
pub const MAX_TIMEOUT_MS: u64 = 60_000;
/// Default `limits.maxConcurrent`: well below the pool's slots, so one plugin's calls cannot
/// take them all.
pub const DEFAULT_MAX_CONCURRENT: u32 = 16;

/// The three plugin kinds (one per WIT world).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginKind {
    /// `secret-source-plugin`.
    SecretSource,
    /// `policy-evaluator-plugin`.
    PolicyEvaluator,
    /// `auth-profile-plugin`.
    AuthProfile,
}

impl PluginKind {
    /// Human name (`secret source`).
    pub fn label(self) -> &'static str {
        match self {
            Self::SecretSource => "secret source",
            Self::PolicyEvaluator => "policy evaluator",
            Self::AuthProfile => "auth profile",
        }
    }

    /// The kind's interface name in WIT.
    pub fn interface(self) -> &'static str {
        match self {
            Self::SecretSource => "secret-source",
            Self::PolicyEvaluator => "policy-evaluator",
            Self::AuthProfile => "auth-profile",
        }
    }

    /// The kind's world name in WIT.
    pub fn world(self) -> &'static str {
        match self {
            Self::SecretSource => "secret-source-plugin",
            Self::PolicyEvaluator => "policy-evaluator-plugin",
            Self::AuthProfile => "auth-profile-plugin",
        }
    }

    fn from_interface(name: &str) -> Option<Self> {
        [Self::SecretSource, Self::PolicyEvaluator, Self::AuthProfile]
            .into_iter()
            .find(|k| k.interface() == name)
    }

    /// `portcullis:plugin` interfaces the kind's world imports.
    fn allowed_imports(self) -> &'static [&'static str] {
        match self {
            Self::PolicyEvaluator => &["types", "log", "clock"],
            Self::SecretSource | Self::AuthProfile => &["types", "log", "clock", "outbound-http"],
        }
    }

    fn from_wit(kind: bindings::types::PluginKind) -> Self {
        match kind {
            bindings::types::PluginKind::SecretSource => Self::SecretSource,
            bindings::types::PluginKind::PolicyEvaluator => Self::PolicyEvaluator,
            bindings::types::PluginKind::AuthProfile => Self::AuthProfile,
        }
    }
}

/// What the plugin says about itself (`lifecycle.metadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// Plugin's own name.
    pub name: String,
    /// Plugin's own version.
    pub version: String,
    /// One line for operators.
    pub description: String,
    /// JSON Schema of its config.
    pub config_schema: String,
}

/// Per-call limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Linear memory cap in bytes.
    pub memory_bytes: usize,
    /// Wall-clock budget per call (init + the kind's function).
    pub timeout: Duration,
    /// Calls running at once.
    pub max_concurrent: u32,
}

impl Limits {
    /// From `plugins.<name>.limits`, with defaults and caps.
    pub fn from_config(config: &PluginConfig) -> Self {
        let limits = config.limits.clone().unwrap_or_default();
        let mib = limits
            .memory_mib
            .unwrap_or(DEFAULT_MEMORY_MIB)
            .clamp(1, MAX_MEMORY_MIB);
        let ms = limits
            .timeout_ms
            .unwrap_or(DEFAULT_TIMEOUT_MS)
            .clamp(1, MAX_TIMEOUT_MS);
        Self {
            memory_bytes: (mib as usize) << 20,
            timeout: Duration::from_millis(ms),
            max_concurrent: limits
                .max_concurrent
                .unwrap_or(DEFAULT_MAX_CONCURRENT)
                .clamp(1, POOL_INSTANCES),
        }
    }
}

pub(crate) enum Pre {
    Secret(secret::SecretSourcePluginPre<CallState>),
    Policy(policy::PolicyEvaluatorPluginPre<CallState>),
    Auth(auth::AuthProfilePluginPre<CallState>),
}

/// A loaded plugin: compiled, linked, checked, ready for isolated calls.
pub struct LoadedPlugin {
    pub(crate) name: Arc<str>,
    kind: PluginKind,
    metadata: Metadata,
    sha256: String,
    path: PathBuf,
    imports: Vec<String>,
    pub(crate) pre: Pre,
    pub(crate) grants: Arc<Grants>,
    pub(crate) limits: Limits,
    pub(crate) config_json: String,
    pub(crate) engine: Arc<PluginEngine>,
    /// Prepared instances (see [`super::warm`]).
    pub(crate) warm: Warm,
    /// This plugin's call slots (`limits.maxConcurrent`).
    pub(crate) calls: Arc<Semaphore>,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

/// What `inspect` learns from a component without any config.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// The kind.
    pub kind: PluginKind,
    /// The world and version, `portcullis:plugin/secret-source-plugin@0.1.0`.
    pub world: String,
    /// Every import name.
    pub imports: Vec<String>,
    /// sha256 of the file.
    pub sha256: String,
    /// `lifecycle.metadata()`.
    pub metadata: Metadata,
}

/// Hex sha256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Find the kind and check the version from export names; check imports against the world.
fn classify(
    engine: &PluginEngine,
    component: &Component,
) -> Result<(PluginKind, Vec<String>), LoadErrorKind> {
    let ty = component.component_type();
    let mut kinds = Vec::new();
    for (name, _) in ty.exports(&engine.engine) {
        let Some(rest) = name.strip_prefix("portcullis:plugin/") else {
            continue;
        };
        let (interface, version) = rest.split_once('@').unwrap_or((rest, ""));
        if version != WIT_VERSION {
            return Err(LoadErrorKind::UnsupportedVersion(format!(
                "portcullis:plugin@{version}"
            )));
        }
        if let Some(kind) = PluginKind::from_interface(interface) {
            kinds.push(kind);
        }
    }
    let kind = match kinds.as_slice() {
        [kind] => *kind,
        [] => return Err(LoadErrorKind::UnknownKind(
            "it exports none of portcullis:plugin/secret-source, policy-evaluator, auth-profile"
                .into(),
        )),
        _ => {
            return Err(LoadErrorKind::UnknownKind(
                "it exports more than one plugin kind".into(),
            ))
        }
    };
    let mut imports = Vec::new();
    for (name, _) in ty.imports(&engine.engine) {
        let allowed = match name.strip_prefix("portcullis:plugin/") {
            Some(rest) => {
                let (interface, version) = rest.split_once('@').unwrap_or((rest, ""));
                version == WIT_VERSION && kind.allowed_imports().contains(&interface)
            }
            // WASI 0.2 is linked with a context that grants only what the operator granted.
            None => name.starts_with("wasi:") && name.contains("@0.2."),
        };
        if !allowed {
            return Err(LoadErrorKind::UngrantedImport(name.to_owned()));
        }
        imports.push(name.to_owned());
    }
    Ok((kind, imports))
}

fn link(
    engine: &PluginEngine,
    kind: PluginKind,
    component: &Component,
) -> Result<Pre, LoadErrorKind> {
    let ungranted = |e: wasmtime::Error| LoadErrorKind::UngrantedImport(format!("{e}"));
    Ok(match kind {
        PluginKind::SecretSource => {
            let pre = engine
                .secret_linker
                .instantiate_pre(component)
                .map_err(ungranted)?;
            Pre::Secret(secret::SecretSourcePluginPre::new(pre).map_err(ungranted)?)
        }
        PluginKind::PolicyEvaluator => {
            let pre = engine
                .policy_linker
                .instantiate_pre(component)
                .map_err(ungranted)?;
            Pre::Policy(policy::PolicyEvaluatorPluginPre::new(pre).map_err(ungranted)?)
        }
        PluginKind::AuthProfile => {
            let pre = engine
                .auth_linker
                .instantiate_pre(component)
                .map_err(ungranted)?;
            Pre::Auth(auth::AuthProfilePluginPre::new(pre).map_err(ungranted)?)
        }
    })
}

fn resolve_grants(
    name: &str,
    config: &PluginConfig,
    base_dir: &Path,
) -> Result<Grants, PluginError> {
    let grants = config.grants.clone().unwrap_or_default();
    let fail = |m: String| PluginError::load(name, LoadErrorKind::Init(m));
    let env = grants
        .env
        .iter()
        .flatten()
        .filter_map(|var| std::env::var(var).ok().map(|v| (var.clone(), v)))
        .collect();
    let mut dirs = Vec::new();
    for dir in grants.files.iter().flatten() {
        let path = portcullis_config::absolute_clean(&base_dir.join(dir));
        if !path.is_dir() {
            return Err(fail(format!(
                "grants.files: {} is not a directory",
                path.display()
            )));
        }
        dirs.push(path);
    }
    let mut origins = Vec::new();
    for origin in grants.http.iter().flatten() {
        origins.push(Origin::parse(origin).map_err(|e| fail(format!("grants.http: {e}")))?);
    }
    Ok(Grants { env, dirs, origins })
}

impl LoadedPlugin {
    /// Load `plugins.<name>` from `config`, resolving `path` and `grants.files` against
    /// `base_dir` (the config file's directory).
    pub fn load(
        engine: &Arc<PluginEngine>,
        name: &str,
        config: &PluginConfig,
        base_dir: &Path,
    ) -> Result<Self, PluginError> {
        let err = |kind| PluginError::load(name, kind);
        let path = portcullis_config::absolute_clean(
            &base_dir.join(config.path.as_deref().unwrap_or_default()),
        );
        let bytes = std::fs::read(&path)
            .map_err(|e| err(LoadErrorKind::Read(format!("{}: {e}", path.display()))))?;
        let sha256 = sha256_hex(&bytes);
        if let Some(expected) = &config.sha256 {
            if !expected.eq_ignore_ascii_case(&sha256) {
                return Err(err(LoadErrorKind::ShaMismatch {
                    expected: expected.to_ascii_lowercase(),
                    actual: sha256,
                }));
            }
        }
        let component = engine
            .compile(&sha256, &bytes)
            .map_err(|e| err(LoadErrorKind::Compile(format!("{e}"))))?;
        let (kind, imports) = classify(engine, &component).map_err(err)?;
        let pre = link(engine, kind, &component).map_err(err)?;
        let grants = Arc::new(resolve_grants(name, config, base_dir)?);
        let config_json = serde_json::to_string(&config.config.clone().unwrap_or_default())
            .unwrap_or_else(|_| "{}".into());
        let placeholder = Metadata {
            name: String::new(),
            version: String::new(),
            description: String::new(),
            config_schema: String::new(),
        };
        let limits = Limits::from_config(config);
        let mut plugin = Self {
            calls: Arc::new(Semaphore::new(limits.max_concurrent as usize)),
            name: Arc::from(name),
            kind,
            metadata: placeholder,
            sha256,
            path,
            imports,
            pre,
            grants,
            limits,
            config_json,
            engine: engine.clone(),
            warm: Warm::from_config(config.prewarm.as_ref()),
        };
        let metadata = plugin.call_metadata().map_err(|e| match e {
            PluginError::Call { kind, .. } => err(LoadErrorKind::Init(kind.to_string())),
            other => other,
        })?;
        let declared = PluginKind::from_wit(metadata.1);
        if declared != kind {
            return Err(err(LoadErrorKind::WrongKind {
                expected: kind.label(),
                actual: declared.label(),
            }));
        }
        plugin.metadata = metadata.0;
        plugin.check_config()?;
        plugin
            .call_init()
            .map_err(|e| err(LoadErrorKind::Init(e.to_string())))?;
        Ok(plugin)
    }

    /// Validate the operator's `config` against the plugin's declared JSON Schema.
    fn check_config(&self) -> Result<(), PluginError> {
        let err = |m: String| PluginError::load(&self.name, LoadErrorKind::Init(m));
        let schema: serde_json::Value = serde_json::from_str(&self.metadata.config_schema)
            .map_err(|e| err(format!("the plugin's config schema is not JSON: {e}")))?;
        let validator = jsonschema::validator_for(&schema)
            .map_err(|e| err(format!("the plugin's config schema is invalid: {e}")))?;
        let config: serde_json::Value =
            serde_json::from_str(&self.config_json).unwrap_or(serde_json::Value::Null);
        let problems: Vec<String> = validator
            .iter_errors(&config)
            .take(5)
            .map(|e| format!("config{}: {e}", e.instance_path()))
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(err(format!(
                "config does not match the plugin's schema: {}",
                problems.join("; ")
            )))
        }
    }

    /// The configured name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kind.
    pub fn kind(&self) -> PluginKind {
        self.kind
    }

    /// `lifecycle.metadata()`, read at load.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// sha256 of the component file.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The component file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Import names.
    pub fn imports(&self) -> &[String] {
        &self.imports
    }

    /// Per-call limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// `portcullis:plugin/<world>@<version>`.
    pub fn world(&self) -> String {
        format!("portcullis:plugin/{}@{WIT_VERSION}", self.kind.world())
    }
}

/// Inspect a component file without any config: kind, world, imports, metadata, digest.
pub fn inspect(path: &Path) -> Result<Inspection, PluginError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let engine = PluginEngine::shared();
    // Reuse the loader up to metadata; init with `{}` may legitimately fail for plugins that
    // need config, so inspection does not call it.
    let err = |kind| PluginError::load(&name, kind);
    let bytes = std::fs::read(path)
        .map_err(|e| err(LoadErrorKind::Read(format!("{}: {e}", path.display()))))?;
    let sha256 = sha256_hex(&bytes);
    let component = engine
        .compile(&sha256, &bytes)
        .map_err(|e| err(LoadErrorKind::Compile(format!("{e}"))))?;
    let (kind, imports) = classify(&engine, &component).map_err(err)?;
    let pre = link(&engine, kind, &component).map_err(err)?;
    let limits = Limits::from_config(&PluginConfig::default());
    let plugin = LoadedPlugin {
        calls: Arc::new(Semaphore::new(limits.max_concurrent as usize)),
        name: Arc::from(name.as_str()),
        kind,
        metadata: Metadata {
            name: String::new(),
            version: String::new(),
            description: String::new(),
            config_schema: String::new(),
        },
        sha256: sha256.clone(),
        path: path.to_path_buf(),
        imports: imports.clone(),
        pre,
        grants: Arc::new(Grants::default()),
        limits,
        config_json: "{}".into(),
        engine,
        warm: Warm::from_config(None),
    };
    let (metadata, _) = plugin.call_metadata()?;
    Ok(Inspection {
        kind,
        world: plugin.world(),
        imports,
        sha256,
        metadata,
    })
}
