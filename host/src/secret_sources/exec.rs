//! `exec`: a program prints the secret on stdout.
//!
//! | rule | value |
//! |---|---|
//! | allowed | only with `policy.allowExecSecrets: true`; otherwise the config is refused at load, naming the secret |
//! | argv | `command` (an array, no shell), or `[value]` (a program without arguments) |
//! | deadline | `timeoutMs`, default 5000; the program's process group is killed on expiry |
//! | stdout | at most 64 KiB; exactly one trailing `\n` or `\r\n` is trimmed; empty is an error |
//! | stderr | discarded unread (it may contain the secret); errors give the exit status only |
//! | exit | non-zero is an error, even with output |
//!
//! The program runs on every resolution (no caching), so rotation on the helper's side is
//! picked up on the next call; see `docs/performance.md` for what that costs.

use std::time::Duration;

use super::{finish, process, SourceError};
use crate::config::Secret;

/// Stdout cap of an exec secret.
pub const MAX_OUTPUT_BYTES: usize = 64 * 1024;

const WHAT: &str = "exec command";

/// The `exec` source.
pub struct Exec;

impl super::SecretSource for Exec {
    fn resolve<'a>(
        &'a self,
        request: super::SecretRequest<'a>,
    ) -> futures_util::future::BoxFuture<'a, Result<crate::redact::SecretValue, SourceError>> {
        Box::pin(async move {
            let timeout = super::helper_timeout(request.secret);
            super::checked(read(&argv(request.secret)?, timeout).await?)
        })
    }
}

/// The argv to run: `command`, or `[value]`.
pub fn argv(secret: &Secret) -> Result<Vec<String>, SourceError> {
    let argv = match (&secret.command, &secret.value) {
        (Some(command), _) => command.clone(),
        (None, Some(program)) => vec![program.clone()],
        (None, None) => Vec::new(),
    };
    if argv.first().is_none_or(String::is_empty) {
        return Err(SourceError::NoReference { kind: "exec" });
    }
    Ok(argv)
}

/// Run `argv` and return its trimmed stdout.
pub async fn read(argv: &[String], timeout: Duration) -> Result<String, SourceError> {
    let program = argv.first().cloned().unwrap_or_default();
    let done = process::run(WHAT, argv, timeout, MAX_OUTPUT_BYTES).await?;
    if !done.status.success() {
        return Err(SourceError::Failed {
            what: WHAT,
            program,
            status: process::describe(done.status),
        });
    }
    finish(done.stdout, || format!("{WHAT} `{program}`"))
}

/// Why `argv[0]` cannot be started right now, if it cannot (for load-time checks: the
/// program is looked up, never run).
pub fn problem(argv: &[String]) -> Option<SourceError> {
    let program = argv.first()?;
    if super::keychain::on_path(program) {
        return None;
    }
    Some(SourceError::Spawn {
        what: WHAT,
        program: program.clone(),
        kind: std::io::ErrorKind::NotFound,
    })
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// A real `sh` script in a temp dir; returns its argv. Run through `/bin/sh` rather than
    /// executed directly: exec'ing a just-written file races with forks in parallel tests
    /// (ETXTBSY).
    fn script(dir: &tempfile::TempDir, body: &str) -> Vec<String> {
        let path = dir.path().join("helper.sh");
        std::fs::write(&path, format!("{body}\n")).unwrap();
        vec!["/bin/sh".to_owned(), path.display().to_string()]
    }

    const FIVE_S: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn prints_the_secret_and_one_trailing_newline_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let argv = script(&dir, "printf 'tok-1\\n'");
        assert_eq!(read(&argv, FIVE_S).await.unwrap(), "tok-1");
    }

    #[tokio::test]
    async fn argv_is_passed_without_a_shell() {
        let dir = tempfile::tempdir().unwrap();
        let mut argv = script(&dir, "printf '%s' \"$1\"");
        argv.push("$(echo injected); `x`".into());
        assert_eq!(read(&argv, FIVE_S).await.unwrap(), "$(echo injected); `x`");
    }

    fn alive(pid: &str) -> bool {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z ")
    }

    #[tokio::test]
    async fn a_hanging_command_is_killed_with_its_children_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        let argv = script(
            &dir,
            &format!("sleep 30 & echo $$ $! > {}\nwait", pids.display()),
        );
        let started = std::time::Instant::now();
        let err = read(&argv, Duration::from_millis(300)).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(3), "{err}");
        assert!(matches!(err, SourceError::Timeout { .. }), "{err}");
        assert!(err.to_string().contains("300 ms"), "{err}");
        let text = std::fs::read_to_string(&pids).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        for pid in text.split_whitespace() {
            assert!(!alive(pid), "process {pid} survived the timeout");
        }
    }

    #[tokio::test]
    async fn output_over_the_cap_is_refused_and_the_command_killed() {
        let dir = tempfile::tempdir().unwrap();
        // 10 MB of 'a', then a long sleep: the cap must end it, not the deadline.
        let argv = script(&dir, "head -c 10000000 /dev/zero | tr '\\0' a\nsleep 30");
        let started = std::time::Instant::now();
        let err = read(&argv, FIVE_S).await.unwrap_err();
        assert!(
            matches!(
                err,
                SourceError::TooLarge {
                    limit: MAX_OUTPUT_BYTES,
                    ..
                }
            ),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(4));
        assert!(!err.to_string().contains("aaaa"));
    }

    #[tokio::test]
    async fn output_of_exactly_the_cap_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let argv = script(
            &dir,
            &format!("head -c {MAX_OUTPUT_BYTES} /dev/zero | tr '\\0' a"),
        );
        assert_eq!(read(&argv, FIVE_S).await.unwrap().len(), MAX_OUTPUT_BYTES);
    }

    #[tokio::test]
    async fn non_zero_exit_is_an_error_even_with_output_and_stderr_is_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let argv = script(&dir, "echo CANARY-OUT; echo CANARY-ERR >&2; exit 3");
        let err = read(&argv, FIVE_S).await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains("exit status 3"), "{text}");
        assert!(!text.contains("CANARY"), "{text}");
    }

    #[tokio::test]
    async fn empty_output_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        for body in ["true", "echo"] {
            let err = read(&script(&dir, body), FIVE_S).await.unwrap_err();
            assert!(matches!(err, SourceError::Empty(_)), "{body}: {err}");
        }
    }

    #[tokio::test]
    async fn cr_or_lf_inside_the_value_is_refused_without_echo() {
        let dir = tempfile::tempdir().unwrap();
        for body in [
            "printf 'CANARY\\r\\nX-Evil: 1'",
            "printf 'CANARY\\n\\n'",
            "printf 'CAN\\0ARY'",
        ] {
            let secret = Secret {
                kind: Some(crate::config::SecretType::Exec),
                command: Some(script(&dir, body)),
                ..Secret::default()
            };
            let err = crate::secret_sources::resolve(&secret).await.unwrap_err();
            assert!(matches!(err, SourceError::ForbiddenBytes), "{body}: {err}");
            assert!(!err.to_string().contains("CANARY"));
        }
    }

    #[tokio::test]
    async fn a_missing_program_is_a_spawn_error_naming_it() {
        let argv = vec!["/nonexistent/portcullis-helper".to_owned()];
        let err = read(&argv, FIVE_S).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("`/nonexistent/portcullis-helper` could not be started"),
            "{err}"
        );
        assert!(problem(&argv).is_some());
        assert!(problem(&["sh".to_owned()]).is_none());
    }
}
