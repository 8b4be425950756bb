//! Scope discovery and loading. (Implementation in progress.)

use std::path::PathBuf;

use super::{Config, ConfigError};

/// The four config scopes, in precedence order (later wins).
#[derive(Debug, Clone, Default)]
pub struct ScopePaths {
    /// Organisation-managed config (default `/etc/open-cli/.cli.json`).
    pub managed: Option<PathBuf>,
    /// Per-user config (default `$XDG_CONFIG_HOME/open-cli/.cli.json`).
    pub user: Option<PathBuf>,
    /// The project config given with `--config`.
    pub project: PathBuf,
    /// `.cli.local.json` beside the project config.
    pub local: Option<PathBuf>,
}

/// A merged, validated config and where it came from.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The effective config.
    pub config: Config,
    /// Directory that relative references resolve against.
    pub base_dir: PathBuf,
    /// Absolute, cleaned path of the project config (the config binding key).
    pub project_path: PathBuf,
    /// Scope files that existed and were read (watched for changes).
    pub files: Vec<PathBuf>,
}

/// Load, merge and validate every scope.
pub fn load(_paths: &ScopePaths) -> Result<LoadedConfig, ConfigError> {
    todo!("config loading")
}
