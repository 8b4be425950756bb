//! `portcullis plugin new <kind> <name>`: write a plugin crate that builds as is.
//!
//! The templates live in `sdk/templates/` (`common/` plus one directory per kind) and are compiled
//! into the binary, so the command works from an installed binary too. The new crate depends on
//! the SDK either by path (the default for a binary built from a Portcullis checkout: that
//! checkout's `sdk/`) or by crates.io version (`--sdk-version`), see [`SdkDependency`].
//!
//! Nothing is overwritten: the target directory must not exist yet (or be empty).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The kind of plugin to scaffold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaffoldKind {
    /// `secret-source`
    SecretSource,
    /// `policy-evaluator`
    PolicyEvaluator,
    /// `auth-profile`
    AuthProfile,
}

impl ScaffoldKind {
    /// Every kind, in the order the WIT lists them.
    pub const ALL: [Self; 3] = [Self::SecretSource, Self::PolicyEvaluator, Self::AuthProfile];

    /// The kind's WIT name (`secret-source`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SecretSource => "secret-source",
            Self::PolicyEvaluator => "policy-evaluator",
            Self::AuthProfile => "auth-profile",
        }
    }

    /// The template's `(path in the new crate, contents)` pairs, placeholders unreplaced.
    fn files(self) -> [(&'static str, &'static str); 3] {
        macro_rules! kind_files {
            ($dir:literal) => {
                [
                    (
                        "Cargo.toml",
                        include_str!("../../sdk/templates/common/Cargo.toml"),
                    ),
                    (
                        "config.schema.json",
                        include_str!(concat!("../../sdk/templates/", $dir, "/config.schema.json")),
                    ),
                    (
                        "src/lib.rs",
                        include_str!(concat!("../../sdk/templates/", $dir, "/src/lib.rs")),
                    ),
                ]
            };
        }
        match self {
            Self::SecretSource => kind_files!("secret-source"),
            Self::PolicyEvaluator => kind_files!("policy-evaluator"),
            Self::AuthProfile => kind_files!("auth-profile"),
        }
    }
}

impl fmt::Display for ScaffoldKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ScaffoldKind {
    type Err = ScaffoldError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| ScaffoldError::UnknownKind(text.to_owned()))
    }
}

/// How the new crate depends on `portcullis-sdk`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdkDependency {
    /// `portcullis-sdk = { path = "..." }`: a Portcullis checkout's `sdk/` directory.
    Path(PathBuf),
    /// `portcullis-sdk = "<version>"` from crates.io.
    Version(String),
}

impl SdkDependency {
    /// The `sdk/` of the checkout this binary was built from, if it is still there; otherwise
    /// this binary's version from crates.io.
    pub fn for_this_build() -> Self {
        let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
        match sdk.join("Cargo.toml").is_file() {
            true => Self::Path(sdk.canonicalize().unwrap_or(sdk)),
            false => Self::Version(env!("CARGO_PKG_VERSION").to_owned()),
        }
    }

    /// The TOML value after `portcullis-sdk = `.
    fn toml(&self) -> String {
        match self {
            // Debug-quoting is a valid TOML basic string for any path without control characters.
            Self::Path(path) => format!("{{ path = {:?} }}", path.display().to_string()),
            Self::Version(version) => format!("{version:?}"),
        }
    }
}

/// Why no crate was written.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// Not one of the three kinds.
    #[error("unknown plugin kind `{0}`: expected secret-source, policy-evaluator or auth-profile")]
    UnknownKind(String),
    /// The name is not a valid plugin name.
    #[error("invalid plugin name `{0}`: use lowercase letters, digits and single `-`, starting with a letter")]
    InvalidName(String),
    /// The target directory already has files in it.
    #[error("{0} already exists and is not empty; choose another name or directory")]
    Exists(PathBuf),
    /// Writing failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The file or directory being written.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Write a new `kind` plugin crate called `name` into `dir` (created; must not hold files yet).
/// Returns the files written.
pub fn scaffold(
    kind: ScaffoldKind,
    name: &str,
    dir: &Path,
    sdk: &SdkDependency,
) -> Result<Vec<PathBuf>, ScaffoldError> {
    if !is_plugin_name(name) {
        return Err(ScaffoldError::InvalidName(name.to_owned()));
    }
    let occupied = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
    if occupied {
        return Err(ScaffoldError::Exists(dir.to_owned()));
    }
    let replacements = [
        ("{{name}}", name.to_owned()),
        ("{{crate_name}}", name.replace('-', "_")),
        ("{{type_name}}", type_name(name)),
        ("{{sdk_dependency}}", sdk.toml()),
    ];
    let mut written = Vec::new();
    for (relative, template) in kind.files() {
        let path = dir.join(relative);
        let contents = replacements
            .iter()
            .fold(template.to_owned(), |text, (placeholder, value)| {
                text.replace(placeholder, value)
            });
        let io = |source| ScaffoldError::Io {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        std::fs::write(&path, contents).map_err(io)?;
        written.push(path);
    }
    Ok(written)
}

/// Plugin names as the WIT metadata requires: lowercase letters, digits and `-`; here also
/// starting with a letter, with no `--` or trailing `-`, so the name is a valid crate name too.
fn is_plugin_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && !name.contains("--")
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// `vault-secrets` -> `VaultSecrets`.
fn type_name(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_crate_and_type_names() {
        assert_eq!(type_name("vault-secrets"), "VaultSecrets");
        assert_eq!(type_name("a2-b"), "A2B");
        for bad in ["", "Vault", "-a", "a-", "a--b", "a_b", "9a", "a b"] {
            assert!(!is_plugin_name(bad), "{bad:?}");
        }
        assert!(is_plugin_name("vault-secrets2"));
    }

    #[test]
    fn kinds_parse_from_their_wit_names() {
        for kind in ScaffoldKind::ALL {
            assert_eq!(kind.as_str().parse::<ScaffoldKind>().unwrap(), kind);
        }
        assert!(matches!(
            "secret".parse::<ScaffoldKind>(),
            Err(ScaffoldError::UnknownKind(_))
        ));
    }

    #[test]
    fn scaffold_refuses_bad_names_and_occupied_directories() {
        let dir = tempfile::tempdir().unwrap();
        let sdk = SdkDependency::Version("0.1.0".to_owned());
        let kind = ScaffoldKind::SecretSource;
        assert!(matches!(
            scaffold(kind, "Bad", dir.path(), &sdk),
            Err(ScaffoldError::InvalidName(_))
        ));
        std::fs::write(dir.path().join("keep.txt"), "mine").unwrap();
        assert!(matches!(
            scaffold(kind, "ok", dir.path(), &sdk),
            Err(ScaffoldError::Exists(_))
        ));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("keep.txt")).unwrap(),
            "mine"
        );
    }

    #[test]
    fn every_placeholder_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let sdk = SdkDependency::Path(PathBuf::from("/src/portcullis/sdk"));
        for kind in ScaffoldKind::ALL {
            let target = dir.path().join(kind.as_str());
            for file in scaffold(kind, "my-plugin", &target, &sdk).unwrap() {
                let text = std::fs::read_to_string(&file).unwrap();
                assert!(
                    !text.contains("{{"),
                    "{} keeps a placeholder",
                    file.display()
                );
            }
            let manifest = std::fs::read_to_string(target.join("Cargo.toml")).unwrap();
            assert!(manifest.contains(r#"portcullis-sdk = { path = "/src/portcullis/sdk" }"#));
            assert!(manifest.contains(r#"name = "my-plugin""#));
        }
    }
}
