//! Built-in secret sources: one file per `type`, behind one dispatch function ([`resolve`]).
//!
//! | `type` | reference | trimming | fails when |
//! |---|---|---|---|
//! | `literal` | `value` is the secret | none | empty |
//! | `env` | `value` names a variable | none | unset, empty, not UTF-8 |
//! | `file` | `value` is a path (read once per resolution, [`mod@file`]) | one trailing `\n` or `\r\n` | missing, unreadable, not a regular file (FIFO, device, directory), > 64 KiB, not read within 2 s, not UTF-8, empty |
//! | `osKeychain` | `value` names an item ([`keychain`]) | one trailing `\n` or `\r\n` | tool missing, no such item, timeout, empty |
//! | `exec` | `command` argv (or `[value]`) ([`exec`]) | one trailing `\n` or `\r\n` | timeout (default 5 s), > 64 KiB stdout, non-zero exit, empty |
//! | `oauth2`, `plugin` | not built in: resolved by the OAuth client and the plugin host | — | always, here |
//!
//! Rule: every value, whatever its source, is refused when it contains CR, LF or NUL (it would
//! split or truncate a header). Failure mode: a [`SourceError`] names the reference (variable
//! name, path, keychain attributes, program) and why — never the value, never a helper's
//! stderr, never a byte of its stdout.

pub mod env;
pub mod exec;
pub mod file;
pub mod keychain;
pub mod literal;
mod process;

use std::time::Duration;

use super::SecretValue;
use crate::config::{Secret, SecretType};

/// Default deadline for `exec` and `osKeychain` helper programs.
pub const DEFAULT_HELPER_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a secret reference could not be resolved. Never carries the value.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The entry has no `type`.
    #[error("secret has no type")]
    NoType,
    /// `value` (or `command` for exec) is missing.
    #[error("{kind} secret has no reference")]
    NoReference {
        /// The source type.
        kind: &'static str,
    },
    /// A `literal` with an empty value.
    #[error("literal secret is empty")]
    LiteralEmpty,
    /// `env`: the variable is not set (or not UTF-8).
    #[error("environment variable {0} is not set")]
    EnvUnset(String),
    /// `env`: the variable is set to the empty string.
    #[error("environment variable {0} is empty")]
    EnvEmpty(String),
    /// `file`: the file could not be read.
    #[error("secret file {path}: {kind}")]
    File {
        /// The configured path.
        path: String,
        /// What went wrong (not found, permission denied, invalid data, ...).
        kind: std::io::ErrorKind,
    },
    /// `file`: a FIFO, socket, device or directory (never opened in a way that blocks).
    #[error("secret file {path} is not a regular file")]
    FileNotRegular {
        /// The configured path.
        path: String,
    },
    /// `file`: the read did not finish in time (a hung mount).
    #[error("secret file {path} could not be read within {} ms", .timeout.as_millis())]
    FileTimeout {
        /// The configured path.
        path: String,
        /// The deadline.
        timeout: Duration,
    },
    /// `file`: larger than any credential should be.
    #[error("secret file {path} is larger than {limit} bytes")]
    FileTooLarge {
        /// The configured path.
        path: String,
        /// The cap.
        limit: u64,
    },
    /// `osKeychain`: the reference is not `attr=value ...` / `service/account`.
    #[error("keychain reference {reference:?} is invalid: {why}")]
    KeychainReference {
        /// The configured reference (attribute names and values; not secret).
        reference: String,
        /// What is wrong with it.
        why: String,
    },
    /// `osKeychain`: the OS tool is not installed or not on `PATH`.
    #[error("keychain tool `{tool}` is not installed or not on PATH")]
    KeychainToolMissing {
        /// `secret-tool` or `security`.
        tool: &'static str,
    },
    /// `osKeychain`: the tool ran and found no matching item.
    #[error("no keychain item matches {reference}")]
    KeychainNotFound {
        /// The item's attributes.
        reference: String,
    },
    /// A helper program (`exec` command, keychain tool) could not be started.
    #[error("{what} `{program}` could not be started: {kind}")]
    Spawn {
        /// `exec command` or `keychain tool`.
        what: &'static str,
        /// The program (argv\[0\]).
        program: String,
        /// Why (not found, permission denied, ...).
        kind: std::io::ErrorKind,
    },
    /// A helper program did not finish in time; it was killed.
    #[error("{what} `{program}` did not finish within {} ms and was killed", .timeout.as_millis())]
    Timeout {
        /// `exec command` or `keychain tool`.
        what: &'static str,
        /// The program.
        program: String,
        /// The deadline.
        timeout: Duration,
    },
    /// A helper program printed more than the cap; it was killed.
    #[error("{what} `{program}` printed more than {limit} bytes and was killed")]
    TooLarge {
        /// `exec command` or `keychain tool`.
        what: &'static str,
        /// The program.
        program: String,
        /// The stdout cap in bytes.
        limit: usize,
    },
    /// A helper program exited unsuccessfully. Its stderr is never shown: it may hold the secret.
    #[error("{what} `{program}` failed ({status})")]
    Failed {
        /// `exec command` or `keychain tool`.
        what: &'static str,
        /// The program.
        program: String,
        /// `exit status N` or `killed by signal N`.
        status: String,
    },
    /// The source produced nothing (after trimming).
    #[error("{0} produced an empty value")]
    Empty(String),
    /// The source produced bytes that are not UTF-8.
    #[error("{0} produced a value that is not UTF-8")]
    NotUtf8(String),
    /// The value contains CR, LF or NUL (header injection); refused without echo.
    #[error("secret value contains CR, LF or NUL")]
    ForbiddenBytes,
    /// `oauth2` or `plugin` where only a built-in source can be used.
    #[error("secret type {0} is not a built-in source and cannot be used here")]
    NotBuiltIn(&'static str),
}

/// Resolve a secret reference with the built-in sources. The single dispatch point.
pub async fn resolve(secret: &Secret) -> Result<SecretValue, SourceError> {
    let raw = match secret.kind {
        Some(SecretType::Literal) => literal::read(reference(secret, "literal")?)?,
        Some(SecretType::Env) => env::read(reference(secret, "env")?)?,
        Some(SecretType::File) => file::read(reference(secret, "file")?).await?,
        Some(SecretType::OsKeychain) => {
            keychain::read(reference(secret, "osKeychain")?, helper_timeout(secret)).await?
        }
        Some(SecretType::Exec) => exec::read(&exec::argv(secret)?, helper_timeout(secret)).await?,
        // Not built in: the OAuth client (`oauth2`) and the plugin host (`plugin`) resolve these
        // before reaching this function; anywhere else they fail closed here.
        Some(SecretType::Oauth2) => return Err(SourceError::NotBuiltIn("oauth2")),
        Some(SecretType::Plugin) => return Err(SourceError::NotBuiltIn("plugin")),
        None => return Err(SourceError::NoType),
    };
    if raw.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(SourceError::ForbiddenBytes);
    }
    Ok(SecretValue::new(raw))
}

fn reference<'a>(secret: &'a Secret, kind: &'static str) -> Result<&'a str, SourceError> {
    secret
        .value
        .as_deref()
        .ok_or(SourceError::NoReference { kind })
}

/// `timeoutMs`, or the default.
pub fn helper_timeout(secret: &Secret) -> Duration {
    secret
        .timeout_ms
        .map_or(DEFAULT_HELPER_TIMEOUT, Duration::from_millis)
}

/// The documented trimming rule of `file`, `exec` and `osKeychain`: exactly one trailing
/// `\n` or `\r\n` is removed; anything else (spaces, a second newline) is kept, and a kept
/// CR or LF then fails the CR/LF/NUL check instead of silently changing the credential.
pub(crate) fn trim_one_newline(text: &str) -> &str {
    text.strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(text)
}

/// UTF-8, trimmed, non-empty: the common tail of the file and program sources.
pub(crate) fn finish(bytes: Vec<u8>, what: impl Fn() -> String) -> Result<String, SourceError> {
    let text = String::from_utf8(bytes).map_err(|_| SourceError::NotUtf8(what()))?;
    let trimmed = trim_one_newline(&text);
    if trimmed.is_empty() {
        return Err(SourceError::Empty(what()));
    }
    Ok(if trimmed.len() == text.len() {
        text
    } else {
        trimmed.to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_trailing_newline_is_trimmed() {
        assert_eq!(trim_one_newline("tok\n"), "tok");
        assert_eq!(trim_one_newline("tok\r\n"), "tok");
        assert_eq!(trim_one_newline("tok\n\n"), "tok\n");
        assert_eq!(trim_one_newline("tok "), "tok ");
        assert_eq!(trim_one_newline("tok"), "tok");
    }

    #[tokio::test]
    async fn oauth2_and_plugin_fail_closed_in_the_builtin_dispatch() {
        for (kind, name) in [
            (SecretType::Oauth2, "oauth2"),
            (SecretType::Plugin, "plugin"),
        ] {
            let secret = Secret {
                kind: Some(kind),
                value: Some("x".into()),
                ..Secret::default()
            };
            let err = resolve(&secret).await.unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }
}
