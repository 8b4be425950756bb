//! What every plugin is, whatever its kind: a description ([`Metadata`]) and a constructor from the
//! operator's typed configuration ([`Plugin::init`]).
//!
//! The host calls `init(config)` at load time (to check the configuration) and again at the start of
//! every isolated call, before the kind's function: each call runs in a fresh instance, so a plugin
//! keeps nothing between calls. `init` should therefore be cheap and deterministic.

use std::any::Any;
use std::cell::RefCell;
use std::fmt;

use serde::de::DeserializeOwned;

/// A plugin: its description and how it is built from the operator's `config` object.
///
/// Implement this plus exactly one kind trait ([`crate::SecretSource`], [`crate::PolicyEvaluator`]
/// or [`crate::AuthProfile`]), then call that kind's export macro once.
pub trait Plugin: Sized + 'static {
    /// The `plugins.<name>.config` object, deserialised from JSON. Use `serde_json::Value` to take
    /// anything, or a `#[derive(Deserialize)]` struct (with `#[serde(deny_unknown_fields)]` to
    /// catch operator typos).
    type Config: DeserializeOwned;

    /// Describe the plugin. Must not depend on configuration and must not fail.
    fn metadata() -> Metadata;

    /// Build the plugin from its configuration. Return [`InitError::InvalidConfig`] naming the
    /// key and the problem when the configuration is wrong, [`InitError::Failed`] for anything
    /// else (a granted file is missing, ...).
    fn init(config: Self::Config) -> Result<Self, InitError>;
}

/// What a plugin says about itself; shown by `portcullis plugin inspect`. The kind is filled in by
/// the export macro, so it always matches the world the plugin is built for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// Stable name: lowercase letters, digits and `-` (for example `age-secrets`).
    pub name: String,
    /// The plugin's own version, semver. `env!("CARGO_PKG_VERSION")` is the usual value.
    pub version: String,
    /// One line for operators.
    pub description: String,
    /// JSON Schema (draft 2020-12) of the `config` object, as JSON text. The host validates the
    /// operator's config against it before `init`. `{}` accepts anything.
    pub config_schema: String,
}

impl Metadata {
    /// Metadata with an accept-anything config schema (`{}`).
    pub fn new(name: &str, version: &str, description: &str) -> Self {
        Self {
            name: name.to_owned(),
            version: version.to_owned(),
            description: description.to_owned(),
            config_schema: "{}".to_owned(),
        }
    }

    /// Set the config schema (JSON text, often `include_str!("config.schema.json")`).
    pub fn with_config_schema(mut self, schema: &str) -> Self {
        self.config_schema = schema.to_owned();
        self
    }
}

/// Why `init` refused the operator's configuration. The message reaches the operator (load error,
/// `portcullis plugin check`): name the key and the problem, never a secret value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitError {
    /// The configuration is wrong (a missing key, a malformed value).
    InvalidConfig(String),
    /// The plugin cannot start for another reason (a granted file or env var is missing, ...).
    Failed(String),
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidConfig(message) => write!(f, "invalid config: {message}"),
            Self::Failed(message) => write!(f, "init failed: {message}"),
        }
    }
}

impl std::error::Error for InitError {}

/// Facts about the request that caused a plugin call. Never contains the caller's bearer token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// The runtime's request id (also in the audit record).
    pub request_id: String,
    /// The authenticated principal, if runtime auth is on and the caller is known.
    pub principal: Option<String>,
}

/// Build a plugin from config JSON text exactly as the export macros do: parse into
/// [`Plugin::Config`] (a parse error is [`InitError::InvalidConfig`]), then [`Plugin::init`].
///
/// Use it in native unit tests to exercise a plugin's configuration handling.
pub fn init_from_json<P: Plugin>(config: &str) -> Result<P, InitError> {
    let config: P::Config = serde_json::from_str(config)
        .map_err(|error| InitError::InvalidConfig(error.to_string()))?;
    P::init(config)
}

// The plugin built by the last `init` of this instance. A component instance is single-threaded
// and lives for one call, so a thread-local is the whole state; `Box<dyn Any>` because statics
// cannot be generic over the plugin type.
thread_local! {
    static INSTANCE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Run `init` and keep the plugin for the kind call that follows. A failed `init` also drops any
/// earlier plugin, so a later call fails closed instead of using stale configuration.
pub(crate) fn init_instance<P: Plugin>(config: &str) -> Result<(), InitError> {
    INSTANCE.with(|slot| *slot.borrow_mut() = None);
    let plugin = init_from_json::<P>(config)?;
    INSTANCE.with(|slot| *slot.borrow_mut() = Some(Box::new(plugin)));
    Ok(())
}

/// Call `f` with the plugin `init` built; `None` if `init` has not succeeded in this instance.
pub(crate) fn with_instance<P: Plugin, R>(f: impl FnOnce(&P) -> R) -> Option<R> {
    INSTANCE.with(|slot| {
        let slot = slot.borrow();
        slot.as_ref()?.downcast_ref::<P>().map(f)
    })
}

/// The message every kind returns when the host calls it before a successful `init`.
pub(crate) const NOT_INITIALISED: &str = "plugin called before a successful init";
