//! What the one-shot commands (`portcullis check`, `policy explain`) build without a running
//! instance: the catalog of a loaded config.
//!
//! | rule | default | failure mode |
//! |---|---|---|
//! | MCP sources are listed through sessions opened for this build only | closed again before returning, so no stdio child outlives the command | a pool that cannot be built is one `SourceError` for `*`, not a panic or a partial build |
//! | no on-disk document cache, no forced refresh | `BuildOptions::default()` | an unloadable source is a `SourceError` in the outcome; the caller reports it |
//!
//! The running instance builds its catalog inside its snapshot ([`super::snapshot`]), with
//! the instance's cache directory and MCP sessions kept across rebuilds.

use std::sync::Arc;

use crate::catalog::{BuildOptions, BuildOutcome, SourceError};
use crate::config::LoadedConfig;
use crate::mcp::McpPool;

/// Build the catalog of `loaded` with MCP sessions opened for this build only (closed again
/// before returning, so no stdio child outlives the command).
pub async fn build_catalog(loaded: &LoadedConfig) -> BuildOutcome {
    let pool = match McpPool::new() {
        Ok(pool) => Arc::new(pool),
        Err(e) => {
            return BuildOutcome {
                errors: vec![SourceError {
                    source_id: "*".to_owned(),
                    message: format!("the HTTP client for MCP sources could not be built: {e}"),
                }],
                ..BuildOutcome::default()
            }
        }
    };
    let options = BuildOptions {
        mcp: Some(pool.clone()),
        ..BuildOptions::default()
    };
    let outcome = crate::catalog::build(loaded, &options).await;
    pool.shutdown().await;
    outcome
}
