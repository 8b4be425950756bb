//! Configuration: the `.cli.json` document model, scope discovery and merge, JSON paths, schema
//! and diagnostics.
//!
//! Scopes are read in precedence order managed -> user -> project -> local (later wins, see
//! [`merge`]). Every problem in every scope is collected and reported at once with the JSON path
//! where it occurs; a config with any problem is refused as a whole.
//!
//! Rule: this module imports no other part of the crate (it becomes the bottom crate
//! `portcullis-config`). What a value *means* — limits, URL rules, secret shapes, plugin
//! references — is checked by the capability that reads it (`<capability>/settings.rs`); those
//! checks reach [`load()`] through the [`Rules`] trait, composed by the `app` module.

pub mod auth;
mod check;
pub mod load;
mod managed;
pub mod merge;
pub mod model;
pub mod path;
pub mod schema;
pub mod validate;

pub use auth::{RevocationConfig, ServerAuthConfig};
pub use check::{check, CheckReport};
pub use load::{absolute_clean, load, LoadedConfig, ScopePaths};
pub use model::*;
pub use path::JsonPath;
pub use validate::{ConfigError, Diagnostic, Problems, Rules};

#[cfg(test)]
mod tests {
    /// `config` becomes the bottom crate (`portcullis-config`): a path into any other module of
    /// this crate would be a dependency the other way round.
    #[test]
    fn config_imports_no_other_module_of_the_crate() {
        // Spelled in two parts so this file does not match itself (nor a `grep` for it).
        const NEEDLE: &str = concat!("crate", "::");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/config");
        let mut offending = Vec::new();
        for entry in std::fs::read_dir(&dir).expect("read src/config") {
            let path = entry.expect("dir entry").path();
            let text = std::fs::read_to_string(&path).expect("read config source");
            for (n, line) in text.lines().enumerate() {
                let mut rest = line;
                while let Some(i) = rest.find(NEEDLE) {
                    rest = &rest[i + NEEDLE.len()..];
                    if !rest.starts_with("config") {
                        offending.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                    }
                }
            }
        }
        assert!(
            offending.is_empty(),
            "config must not import other modules; move the rule into the capability's \
             settings.rs and reach it through config::Rules (app::settings):\n{}",
            offending.join("\n")
        );
    }
}
