//! The secret slot of the pipeline (ordered before `oauth`, which resolves its client id and
//! secret through [`resolve`]; `secrets` composes these sources with OAuth tokens): the [`SecretSource`] trait, its built-in implementations
//! (one file per `type`, one unit struct each, found by [`builtin`]) and the WebAssembly adapter
//! ([`wasm::WasmSecretSource`], a secret-source plugin through the plugin host). The resolver
//! holds each as an `Arc<dyn SecretSource>` or `&'static dyn SecretSource` and does not care
//! which it asks; tests give it fakes.
//!
//! | `type` | reference | trimming | fails when |
//! |---|---|---|---|
//! | `literal` | `value` is the secret | none | empty |
//! | `env` | `value` names a variable | none | unset, empty, not UTF-8 |
//! | `file` | `value` is a path (read once per resolution, [`mod@file`]) | one trailing `\n` or `\r\n` | missing, unreadable, not a regular file (FIFO, device, directory), > 64 KiB, not read within 2 s, not UTF-8, empty |
//! | `osKeychain` | `value` names an item ([`keychain`]) | one trailing `\n` or `\r\n` | tool missing, no such item, timeout, empty |
//! | `exec` | `command` argv (or `[value]`) ([`exec`]) | one trailing `\n` or `\r\n` | timeout (default 5 s), > 64 KiB stdout, non-zero exit, empty |
//! | `plugin` | `value` is the plugin's reference ([`wasm`]) | none | the plugin fails, traps, times out or returns an invalid value |
//! | `oauth2` | not a static value: resolved by the OAuth client in `SecretResolver` | — | always, here |
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
pub mod wasm;

use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::config::{Secret, SecretType};
use crate::redact::SecretValue;

/// Who a credential is resolved for (passed to secret plugins as request context).
#[derive(Debug, Clone, Default)]
pub struct CallInfo {
    /// The runtime's request id.
    pub request_id: String,
    /// The authenticated principal.
    pub principal: Option<String>,
}

/// What a source is told about one resolution: the `secrets` entry, and (for a tool call) the
/// tool, scheme and caller it is for.
#[derive(Debug, Clone, Copy)]
pub struct SecretRequest<'a> {
    /// The `secrets.<key>` entry (its `value` is the reference).
    pub secret: &'a Secret,
    /// Service of the tool being called (empty outside a tool call).
    pub service: &'a str,
    /// Security scheme being satisfied (empty outside a tool call).
    pub scheme: &'a str,
    /// Tool id (empty outside a tool call).
    pub tool_id: &'a str,
    /// Request id and principal.
    pub call: &'a CallInfo,
}

/// No call: static references (MCP `headerSecrets`, OAuth client credentials).
static NO_CALL: CallInfo = CallInfo {
    request_id: String::new(),
    principal: None,
};

impl<'a> SecretRequest<'a> {
    /// A request for `secret` outside any tool call.
    pub fn bare(secret: &'a Secret) -> Self {
        Self {
            secret,
            service: "",
            scheme: "",
            tool_id: "",
            call: &NO_CALL,
        }
    }
}

/// A secret source: resolve one reference to a value, or say why not.
///
/// Rule: an `Ok` value is non-empty and has no CR, LF or NUL; an `Err` names the reference (or
/// the plugin), never a value. The resolver fails the alternative on any `Err` and never sends
/// a partial credential.
pub trait SecretSource: Send + Sync {
    /// Resolve `request.secret`.
    fn resolve<'a>(
        &'a self,
        request: SecretRequest<'a>,
    ) -> BoxFuture<'a, Result<SecretValue, SourceError>>;
}

impl std::fmt::Debug for dyn SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretSource")
    }
}

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
    /// `plugin`: the secret names a plugin that is not loaded.
    #[error("plugin {0:?} is not loaded")]
    PluginNotLoaded(String),
    /// `plugin`: the plugin answered with its own error. Its message goes to the log only (the
    /// WIT promises authors it never reaches the caller).
    #[error("plugin {0:?} could not resolve the secret")]
    PluginRefused(String),
    /// `plugin`: a failure the host observed (trap, timeout, busy, memory, invalid value); safe
    /// to state.
    #[error(transparent)]
    Plugin(crate::plugins::PluginError),
}

/// Resolve a secret reference with the built-in sources.
pub async fn resolve(secret: &Secret) -> Result<SecretValue, SourceError> {
    builtin(secret.kind)?
        .resolve(SecretRequest::bare(secret))
        .await
}

/// The built-in source of a `type`: the single dispatch point.
pub fn builtin(kind: Option<SecretType>) -> Result<&'static dyn SecretSource, SourceError> {
    match kind {
        Some(SecretType::Literal) => Ok(&literal::Literal),
        Some(SecretType::Env) => Ok(&env::Env),
        Some(SecretType::File) => Ok(&file::SecretFile),
        Some(SecretType::OsKeychain) => Ok(&keychain::Keychain),
        Some(SecretType::Exec) => Ok(&exec::Exec),
        // Not built in: the OAuth client (`oauth2`) and the plugin's adapter (`plugin`) resolve
        // these in the resolver; anywhere else they fail closed here.
        Some(SecretType::Oauth2) => Err(SourceError::NotBuiltIn("oauth2")),
        Some(SecretType::Plugin) => Err(SourceError::NotBuiltIn("plugin")),
        None => Err(SourceError::NoType),
    }
}

/// The common tail of every built-in source: refuse CR, LF and NUL without echo.
fn checked(raw: String) -> Result<SecretValue, SourceError> {
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
