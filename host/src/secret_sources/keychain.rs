//! `osKeychain`: a password item from the OS keychain, read through the OS's own tool.
//!
//! Reference format (`value`): whitespace-separated `attribute=value` pairs, e.g.
//! `service=github account=ci`. The open-cli forms `service/account` and `service:account`
//! (split at the first `/`, else the first `:`) mean `service=<service> account=<account>`
//! and are the way to name a service or account that contains spaces.
//!
//! | OS | command (argv, no shell) | attributes | "no such item" |
//! |---|---|---|---|
//! | Linux and other Unix | `secret-tool lookup <attr> <value> ...` (libsecret; needs an unlocked Secret Service on the session bus) | any, in the order given | exit 1 with no output |
//! | macOS | `security find-generic-password -s <service> -a <account> -w` | `service` (required), `account` | exit 44 |
//!
//! The tool is found on `PATH`. A missing tool, a missing item, a timeout (`timeoutMs`,
//! default 5 s) and any other failure are distinct errors naming the attributes, never the
//! value; the tool's stderr is discarded. Output: at most 64 KiB, one trailing newline trimmed.

use std::time::Duration;

use super::{finish, process, SourceError};

const WHAT: &str = "keychain tool";
const MAX_OUTPUT_BYTES: usize = 64 * 1024;

/// The OS tool for this build.
#[cfg(target_os = "macos")]
pub const TOOL: &str = "security";
/// The OS tool for this build.
#[cfg(not(target_os = "macos"))]
pub const TOOL: &str = "secret-tool";

/// Exit code of the tool when nothing matches.
#[cfg(target_os = "macos")]
const NOT_FOUND_EXIT: i32 = 44;
#[cfg(not(target_os = "macos"))]
const NOT_FOUND_EXIT: i32 = 1;

/// A parsed reference: `(attribute, value)` pairs in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference(Vec<(String, String)>);

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (k, v)) in self.0.iter().enumerate() {
            write!(f, "{}{k}={v}", if i == 0 { "" } else { " " })?;
        }
        Ok(())
    }
}

impl Reference {
    /// Parse `value`; the error explains the accepted forms.
    pub fn parse(value: &str) -> Result<Self, SourceError> {
        let invalid = |why: &str| SourceError::KeychainReference {
            reference: value.to_owned(),
            why: why.to_owned(),
        };
        let value_trimmed = value.trim();
        if !value_trimmed.contains('=') {
            let (service, account) = value_trimmed
                .split_once('/')
                .or_else(|| value_trimmed.split_once(':'))
                .ok_or_else(|| {
                    invalid("use `service=<s> account=<a>` (attribute=value pairs) or `service/account`")
                })?;
            if service.is_empty() || account.is_empty() {
                return Err(invalid("service and account must not be empty"));
            }
            return Ok(Self(vec![
                ("service".into(), service.into()),
                ("account".into(), account.into()),
            ]));
        }
        let mut pairs: Vec<(String, String)> = Vec::new();
        for pair in value_trimmed.split_whitespace() {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| invalid("every word must be attribute=value"))?;
            let name_ok = !k.is_empty()
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
            if !name_ok {
                return Err(invalid(
                    "attribute names are letters, digits, `_`, `-`, `.`",
                ));
            }
            if v.is_empty() {
                return Err(invalid("attribute values must not be empty"));
            }
            if pairs.iter().any(|(seen, _)| seen == k) {
                return Err(invalid("an attribute is given twice"));
            }
            pairs.push((k.to_owned(), v.to_owned()));
        }
        let reference = Self(pairs);
        reference.argv()?;
        Ok(reference)
    }

    /// The tool's argv for this OS.
    pub fn argv(&self) -> Result<Vec<String>, SourceError> {
        #[cfg(target_os = "macos")]
        {
            let get = |name: &str| self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v);
            if let Some((k, _)) = self
                .0
                .iter()
                .find(|(k, _)| k != "service" && k != "account")
            {
                return Err(SourceError::KeychainReference {
                    reference: self.to_string(),
                    why: format!("macOS supports only service and account, not {k}"),
                });
            }
            let service = get("service").ok_or_else(|| SourceError::KeychainReference {
                reference: self.to_string(),
                why: "macOS needs a service attribute".into(),
            })?;
            let mut argv = vec![
                TOOL.to_owned(),
                "find-generic-password".into(),
                "-s".into(),
                service.clone(),
            ];
            if let Some(account) = get("account") {
                argv.extend(["-a".to_owned(), account.clone()]);
            }
            argv.push("-w".into());
            Ok(argv)
        }
        #[cfg(not(target_os = "macos"))]
        {
            let mut argv = vec![TOOL.to_owned(), "lookup".to_owned()];
            for (k, v) in &self.0 {
                argv.extend([k.clone(), v.clone()]);
            }
            Ok(argv)
        }
    }
}

/// The `osKeychain` source.
pub struct Keychain;

impl super::SecretSource for Keychain {
    fn resolve<'a>(
        &'a self,
        request: super::SecretRequest<'a>,
    ) -> futures_util::future::BoxFuture<'a, Result<crate::redact::SecretValue, SourceError>> {
        Box::pin(async move {
            let reference = super::reference(request.secret, "osKeychain")?;
            super::checked(read(reference, super::helper_timeout(request.secret)).await?)
        })
    }
}

/// Look the item up with the OS tool.
pub async fn read(value: &str, timeout: Duration) -> Result<String, SourceError> {
    let reference = Reference::parse(value)?;
    lookup(&reference, &reference.argv()?, timeout).await
}

/// Run `argv` (the tool's, or a test fake's) and interpret its exit.
async fn lookup(
    reference: &Reference,
    argv: &[String],
    timeout: Duration,
) -> Result<String, SourceError> {
    let done = match process::run(WHAT, argv, timeout, MAX_OUTPUT_BYTES).await {
        Err(SourceError::Spawn {
            kind: std::io::ErrorKind::NotFound,
            ..
        }) => return Err(SourceError::KeychainToolMissing { tool: TOOL }),
        other => other?,
    };
    if done.status.code() == Some(NOT_FOUND_EXIT) && done.stdout.is_empty() {
        return Err(SourceError::KeychainNotFound {
            reference: reference.to_string(),
        });
    }
    if !done.status.success() {
        return Err(SourceError::Failed {
            what: WHAT,
            program: TOOL.to_owned(),
            status: process::describe(done.status),
        });
    }
    finish(done.stdout, || format!("keychain item {reference}"))
}

/// Why `value` cannot be looked up right now, if it cannot (for load-time checks: the
/// reference is parsed and the tool looked for on `PATH`; the keychain is never queried, so a
/// check neither prompts nor unlocks anything).
pub fn problem(value: &str) -> Option<SourceError> {
    if let Err(e) = Reference::parse(value) {
        return Some(e);
    }
    (!on_path(TOOL)).then_some(SourceError::KeychainToolMissing { tool: TOOL })
}

/// True when `program` names an executable file: a path as given, or a name found on `PATH`.
pub(crate) fn on_path(program: &str) -> bool {
    fn executable(path: &std::path::Path) -> bool {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::metadata(path)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        }
        #[cfg(not(unix))]
        {
            path.is_file()
        }
    }
    if program.contains('/') {
        return executable(std::path::Path::new(program));
    }
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| executable(&dir.join(program)))
    })
}

#[cfg(all(test, unix, not(target_os = "macos")))]
mod tests {
    use super::*;

    const FIVE_S: Duration = Duration::from_secs(5);

    /// A fault-injection fake of `secret-tool`, run through `/bin/sh`: there is no Secret
    /// Service (gnome-keyring on a session bus) on a headless test host.
    fn fake(dir: &tempfile::TempDir, body: &str) -> Vec<String> {
        let path = dir.path().join("secret-tool");
        std::fs::write(&path, format!("{body}\n")).unwrap();
        vec!["/bin/sh".to_owned(), path.display().to_string()]
    }

    fn reference() -> Reference {
        Reference::parse("service=github account=ci").unwrap()
    }

    #[test]
    fn reference_forms_and_the_argv_they_give() {
        assert_eq!(
            reference().argv().unwrap(),
            [
                "secret-tool",
                "lookup",
                "service",
                "github",
                "account",
                "ci"
            ]
        );
        assert_eq!(Reference::parse("github/ci").unwrap(), reference());
        assert_eq!(Reference::parse("github:ci").unwrap(), reference());
        assert_eq!(
            Reference::parse("My Service/me").unwrap().argv().unwrap()[3],
            "My Service"
        );
        for bad in [
            "github",
            "service=",
            "=x",
            "service=a service=b",
            "a=b c",
            "/ci",
            "s!=x",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn the_item_is_read_with_the_attributes_as_argv_and_one_newline_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let argv = fake(
            &dir,
            r#"[ "$1 $2 $3 $4 $5" = "lookup service github account ci" ] || exit 9; printf 'kc-tok\n'"#,
        );
        let mut full = argv.clone();
        full.extend(reference().argv().unwrap().into_iter().skip(1));
        assert_eq!(lookup(&reference(), &full, FIVE_S).await.unwrap(), "kc-tok");
    }

    #[tokio::test]
    async fn no_matching_item_is_not_found_naming_the_attributes() {
        let dir = tempfile::tempdir().unwrap();
        let err = lookup(&reference(), &fake(&dir, "echo CANARY >&2; exit 1"), FIVE_S)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no keychain item matches service=github account=ci"
        );
    }

    #[tokio::test]
    async fn a_missing_tool_is_its_own_error() {
        let argv = vec!["/nonexistent/secret-tool".to_owned()];
        let err = lookup(&reference(), &argv, FIVE_S).await.unwrap_err();
        assert!(
            matches!(err, SourceError::KeychainToolMissing { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("not installed"), "{err}");
    }

    #[tokio::test]
    async fn other_failures_and_hangs_are_distinct_errors_without_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let err = lookup(&reference(), &fake(&dir, "echo CANARY >&2; exit 2"), FIVE_S)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("exit status 2") && !err.to_string().contains("CANARY"));
        let err = lookup(
            &reference(),
            &fake(&dir, "exec sleep 30"),
            Duration::from_millis(200),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, SourceError::Timeout { .. }), "{err}");
    }
}
