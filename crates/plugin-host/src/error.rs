//! Typed plugin failures. Every variant names the plugin, so an operator reading a log line or
//! an audit record knows which component to look at. No variant ever carries a secret value:
//! guest messages are kept (they are the plugin's own words), returned values are not.

use std::fmt;

/// Why a plugin could not be loaded (startup, reload, `portcullis plugin check`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadErrorKind {
    /// The component file could not be read.
    Read(String),
    /// `sha256` is pinned in the config and the file's digest differs.
    ShaMismatch {
        /// The pinned digest.
        expected: String,
        /// The file's digest.
        actual: String,
    },
    /// Not a valid component (a core module, truncated, malformed).
    Compile(String),
    /// It exports no `portcullis:plugin` world, or more than one kind.
    UnknownKind(String),
    /// Built against a `portcullis:plugin` version this host does not speak.
    UnsupportedVersion(String),
    /// It is a valid plugin, but not of the kind the config uses it as.
    WrongKind {
        /// The kind the config needs.
        expected: &'static str,
        /// The kind the component is.
        actual: &'static str,
    },
    /// It imports something its world does not allow (the host links nothing else).
    UngrantedImport(String),
    /// `metadata()` or `init(config)` failed.
    Init(String),
}

impl fmt::Display for LoadErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read(e) => write!(f, "cannot read the component: {e}"),
            Self::ShaMismatch { expected, actual } => {
                write!(
                    f,
                    "sha256 mismatch: config pins {expected}, file is {actual}"
                )
            }
            Self::Compile(e) => write!(f, "not a valid WebAssembly component: {e}"),
            Self::UnknownKind(e) => write!(f, "not a Portcullis plugin: {e}"),
            Self::UnsupportedVersion(v) => write!(
                f,
                "built for {v}, which this host does not support (supported: portcullis:plugin@{})",
                super::bindings::WIT_VERSION
            ),
            Self::WrongKind { expected, actual } => {
                write!(f, "is a {actual} plugin, but is used as a {expected}")
            }
            Self::UngrantedImport(name) => {
                write!(f, "imports {name}, which its world does not grant")
            }
            Self::Init(e) => write!(f, "init failed: {e}"),
        }
    }
}

/// What went wrong during one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallErrorKind {
    /// The guest trapped (panic, unreachable, stack overflow, ...).
    Trap(String),
    /// The call ran past `limits.timeoutMs` (epoch deadline).
    Timeout(u64),
    /// The guest waited in a host import (`wasi:io/poll`, ...) until its budget was spent.
    Waited {
        /// The interface it waited in.
        what: &'static str,
        /// The budget, in milliseconds.
        ms: u64,
    },
    /// The guest asked the host for more than its limits allow (random bytes, live WASI
    /// resources, a poll list).
    Limit(String),
    /// Every one of the plugin's call slots (`limits.maxConcurrent`), or the process's CPU
    /// gate, stayed taken for the call's whole budget.
    Busy(String),
    /// The guest asked for more memory than `limits.memoryMiB`.
    Memory(u64),
    /// The guest returned a value the host refuses (too big, unsafe characters, ...).
    InvalidReturn(String),
    /// The guest returned its own error (`secret-error`, `init-error`, policy `err`).
    Guest(String),
    /// The host could not run the call (pool exhausted, runtime shut down).
    Host(String),
}

impl fmt::Display for CallErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Trap(e) => write!(f, "trapped: {e}"),
            Self::Timeout(ms) => write!(f, "timed out after {ms} ms"),
            Self::Waited { what, ms } => write!(f, "waited in {what} past its budget of {ms} ms"),
            Self::Limit(e) => write!(f, "hit a host limit: {e}"),
            Self::Busy(e) => write!(f, "was too busy: {e}"),
            Self::Memory(mib) => write!(f, "exceeded its memory limit of {mib} MiB"),
            Self::InvalidReturn(e) => write!(f, "returned an invalid value: {e}"),
            Self::Guest(e) => write!(f, "failed: {e}"),
            Self::Host(e) => write!(f, "could not be called: {e}"),
        }
    }
}

/// A budget in whole milliseconds for messages, rounded to the nearest (a budget armed a few
/// microseconds after it was computed still reads as the configured `timeoutMs`).
pub fn budget_ms(budget: std::time::Duration) -> u64 {
    (budget.as_micros() as u64).saturating_add(500) / 1000
}

impl CallErrorKind {
    /// Short stable code for audit records and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Trap(_) => "plugin_trap",
            Self::Timeout(_) | Self::Waited { .. } => "plugin_timeout",
            Self::Limit(_) => "plugin_limit",
            Self::Busy(_) => "plugin_busy",
            Self::Memory(_) => "plugin_memory",
            Self::InvalidReturn(_) => "plugin_invalid_return",
            Self::Guest(_) => "plugin_error",
            Self::Host(_) => "plugin_unavailable",
        }
    }
}

/// A plugin failure, always naming the plugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    /// Loading failed.
    #[error("plugin {plugin:?}: {kind}")]
    Load {
        /// The plugin's name (key of `plugins`).
        plugin: String,
        /// Why.
        kind: LoadErrorKind,
    },
    /// One call failed; the request that caused it fails closed.
    #[error("plugin {plugin:?} {kind}")]
    Call {
        /// The plugin's name.
        plugin: String,
        /// Why.
        kind: CallErrorKind,
    },
}

impl PluginError {
    /// A load failure of `plugin`.
    pub fn load(plugin: &str, kind: LoadErrorKind) -> Self {
        Self::Load {
            plugin: plugin.to_owned(),
            kind,
        }
    }

    /// A call failure of `plugin`.
    pub fn call(plugin: &str, kind: CallErrorKind) -> Self {
        Self::Call {
            plugin: plugin.to_owned(),
            kind,
        }
    }

    /// Audit reason code: `plugin_load_error` or the call's [`CallErrorKind::code`].
    pub fn code(&self) -> &'static str {
        match self {
            Self::Load { .. } => "plugin_load_error",
            Self::Call { kind, .. } => kind.code(),
        }
    }
}
