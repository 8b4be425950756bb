//! `portcullis check`: load every scope and report every problem, one line each.
//!
//! Rule: errors make the check fail; warnings (things that load but will not work as the
//! author probably expects) are listed separately and never fail it.

use std::fmt;
use std::path::PathBuf;

use super::load::{load, ScopePaths};
use super::validate::{Diagnostic, Rules};

/// The outcome of checking a set of scopes.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// Problems that make the config unusable.
    pub errors: Vec<Diagnostic>,
    /// Problems that do not fail the check.
    pub warnings: Vec<Diagnostic>,
    /// Scope files that were read (empty when loading failed).
    pub files: Vec<PathBuf>,
}

impl CheckReport {
    /// True when the config loads (warnings allowed).
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Load `paths` under `rules` and report every error and warning.
pub fn check(paths: &ScopePaths, rules: &dyn Rules) -> CheckReport {
    match load(paths, rules) {
        Ok(loaded) => {
            let file = loaded.files.last().map(|f| f.display().to_string());
            let warnings = rules
                .warnings(&loaded.config)
                .into_iter()
                .map(|w| Diagnostic {
                    file: w.file.or_else(|| file.clone()),
                    ..w
                })
                .collect();
            CheckReport {
                errors: Vec::new(),
                warnings,
                files: loaded.files,
            }
        }
        Err(e) => CheckReport {
            errors: e.diagnostics,
            ..CheckReport::default()
        },
    }
}

fn line(f: &mut fmt::Formatter<'_>, prefix: &str, d: &Diagnostic) -> fmt::Result {
    let file = d.file.as_deref().unwrap_or("<merged config>");
    writeln!(f, "{prefix}{file}: {}: {}", d.path, d.message)
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.errors {
            line(f, "", d)?;
        }
        for d in &self.warnings {
            line(f, "warning: ", d)?;
        }
        if self.ok() {
            let files: Vec<String> = self.files.iter().map(|p| p.display().to_string()).collect();
            writeln!(f, "configuration is valid ({})", files.join(", "))
        } else {
            writeln!(f, "{} error(s)", self.errors.len())
        }
    }
}
