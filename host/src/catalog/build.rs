//! Catalog build. (Implementation in progress.)

use std::path::PathBuf;

use super::Catalog;
use crate::config::LoadedConfig;

/// Options for one build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Directory for cached remote documents (none = no disk cache).
    pub cache_dir: Option<PathBuf>,
    /// Revalidate every remote document instead of trusting fresh cache entries (`/v1/refresh`).
    pub force_refresh: bool,
}

/// A source that failed to load; the other sources are unaffected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError {
    /// Source id (config key).
    pub source_id: String,
    /// Why it failed.
    pub message: String,
}

/// How one remote document fetch went (reported by `/v1/refresh`).
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceFetch {
    /// Source id.
    pub id: String,
    /// Document location.
    pub uri: String,
    /// `miss`, `fresh_hit`, `revalidated_hit`, `refreshed`, `stale_hit` (remote documents only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_outcome: Option<String>,
    /// HTTP status of the last fetch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// Served from cache after the origin failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale: Option<bool>,
}

/// What a build produced.
#[derive(Debug, Clone, Default)]
pub struct BuildOutcome {
    /// The catalog of every source that loaded.
    pub catalog: Catalog,
    /// Sources that failed, with reasons.
    pub errors: Vec<SourceError>,
    /// Local files the catalog depends on (watched for changes).
    pub watched_files: Vec<PathBuf>,
    /// Per-source fetch report.
    pub fetches: Vec<SourceFetch>,
}

/// Build the catalog for a loaded config.
pub async fn build(_config: &LoadedConfig, _options: &BuildOptions) -> BuildOutcome {
    todo!("catalog build")
}
