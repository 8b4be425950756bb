//! Config binding: a runtime serves exactly the config it was started with.
//!
//! A request may name a config (`config` query parameter or `configPath` JSON field). It must
//! resolve — made absolute against the runtime's working directory and lexically cleaned, with
//! symlinks not followed — to the runtime's own project config; anything else is refused with
//! 409 `runtime_attach_mismatch`. No selector means the runtime's config.

use std::path::{Component, Path, PathBuf};

use axum::http::StatusCode;

use super::error::ApiError;

/// Lexically normalise `path` against `cwd` (no filesystem access).
pub fn absolute_clean(path: &Path, cwd: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd.join(path)
    };
    let mut out = PathBuf::new();
    for component in joined.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Refuse a selector that names another config.
pub fn check(selector: Option<&str>, bound: &Path) -> Result<(), ApiError> {
    let Some(selector) = selector.filter(|s| !s.is_empty()) else {
        return Ok(());
    };
    let cwd = std::env::current_dir().unwrap_or_default();
    if absolute_clean(Path::new(selector), &cwd) == bound {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::CONFLICT,
            "runtime_attach_mismatch",
            "this runtime is bound to a different config; omit the config selector or name the runtime's own config",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_and_dotted_selectors_resolve_to_the_bound_path() {
        let bound = Path::new("/srv/app/.cli.json");
        assert!(check(Some("/srv/app/./x/../.cli.json"), bound).is_ok());
        assert_eq!(
            absolute_clean(Path::new("app/.cli.json"), Path::new("/srv")),
            bound
        );
        assert!(check(None, bound).is_ok());
        assert!(check(Some(""), bound).is_ok());
    }

    #[test]
    fn another_config_is_a_conflict() {
        let err = check(
            Some("/srv/other/.cli.json"),
            Path::new("/srv/app/.cli.json"),
        )
        .unwrap_err();
        assert_eq!(err.code(), "runtime_attach_mismatch");
        assert_eq!(err.status(), StatusCode::CONFLICT);
    }
}
