//! Config problems, reported all at once with the JSON path of each.

use std::fmt;

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
