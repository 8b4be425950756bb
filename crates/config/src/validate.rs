//! Config problems, reported all at once with the JSON path of each, and the rules of the
//! document itself.
//!
//! Rule: [`document`] checks what no capability owns on the merged config: `cli`,
//! `mode.default`, that something is configured, and the `runtime` block's own `mode` and
//! `local`. Every other rule belongs to the capability that reads the value (its `settings`
//! module) and reaches the loader through [`Rules`]. Nothing here stops at the first problem.
//! Default: nothing is assumed; a missing required value is a problem, not a default. Failure
//! mode: the whole config is refused with every problem.

use std::fmt;

use serde_json::Value;

use super::model::Config;
use super::path::JsonPath;

/// One problem found in a config, located by a JSON path such as `sources.tickets.uri`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Which file (scope) the problem is in, when known.
    pub file: Option<String>,
    /// JSON path of the offending value (`$` for the document root).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}: ")?;
        }
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// A config that cannot be used, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// All problems, in document order.
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("configuration validation failed")?;
        for d in &self.diagnostics {
            write!(f, "; {}: {}", d.path, d.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Problems found by a rule set: where, and what. Each capability's check pushes into one.
#[derive(Debug, Default)]
pub struct Problems(pub Vec<(JsonPath, String)>);

impl Problems {
    /// Record that the value at `path` breaks a rule, saying which.
    pub fn push(&mut self, path: JsonPath, message: impl Into<String>) {
        self.0.push((path, message.into()));
    }
}

/// The checks `config` cannot make itself: each capability's rules, composed by the application
/// (the `app` module). `config` owns only the document: it calls these at the right moments and
/// attributes every problem to the scope file that set the offending key.
pub trait Rules: fmt::Debug + Send + Sync {
    /// Problems in one scope document as written (the index in a path is the index in that
    /// file), reported alongside its schema problems.
    fn scope(&self, doc: &Value) -> Problems;
    /// Problems in the merged config, pushed after [`document`]'s own.
    fn merged(&self, config: &Config, p: &mut Problems);
    /// Problems that do not make the config unusable (listed by `portcullis check`).
    fn warnings(&self, config: &Config) -> Vec<Diagnostic>;
}

/// The document's own rules on the merged config; an empty result means the document is usable
/// as far as `config` can tell (capability rules come from [`Rules::merged`]).
pub fn document(config: &Config) -> Problems {
    let mut p = Problems::default();
    match config.cli.as_deref() {
        None => p.push(JsonPath::of(&["cli"]), "is required"),
        Some(v) if v.trim().is_empty() => p.push(JsonPath::of(&["cli"]), "must not be empty"),
        Some(_) => {}
    }
    if config.mode.as_ref().and_then(|m| m.default).is_none() {
        p.push(JsonPath::of(&["mode", "default"]), "is required");
    }
    if config.sources.is_none() && config.mcp_servers.is_none() && config.runtime.is_none() {
        p.push(
            JsonPath::root(),
            "must configure at least one of sources, mcpServers or runtime",
        );
    }
    if let Some(runtime) = &config.runtime {
        let base = JsonPath::of(&["runtime"]);
        if runtime.mode.as_deref().is_some_and(|mode| mode != "remote") {
            p.push(base.key("mode"), "must be remote");
        }
        if runtime.local.is_some() {
            p.push(
                base.key("local"),
                "is no longer supported; configure a remote runtime instead",
            );
        }
    }
    p
}
