//! Running a helper program (`exec` command, keychain tool) under the rules of the sources.
//!
//! | rule | value |
//! |---|---|
//! | argv | passed as is, no shell, no expansion |
//! | stdin | closed (`/dev/null`) |
//! | stderr | discarded, never read: it may hold the secret or part of it, so it can reach no log or error |
//! | stdout | read up to the caller's cap; one byte more kills the program |
//! | deadline | spawn to exit; on expiry the program's whole process group is killed |
//! | env, working directory | inherited from the runtime |
//!
//! The program runs in a new process group so that killing it also kills what it started (a
//! shell script's `sleep`, a CLI's helper), and `kill_on_drop` covers a cancelled call.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::AsyncReadExt as _;

use super::SourceError;

/// What a finished helper left: its stdout and exit status.
pub(crate) struct Finished {
    pub(crate) stdout: Vec<u8>,
    pub(crate) status: ExitStatus,
}

/// Run `argv` (non-empty) with `timeout` and a stdout `cap`. `what` names the helper in errors.
pub(crate) async fn run(
    what: &'static str,
    argv: &[String],
    timeout: Duration,
    cap: usize,
) -> Result<Finished, SourceError> {
    let program = argv.first().map(String::as_str).unwrap_or_default();
    let mut command = tokio::process::Command::new(program);
    command
        .args(&argv[1.min(argv.len())..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    #[cfg(unix)]
    command.process_group(0);
    let mut child = command.spawn().map_err(|e| SourceError::Spawn {
        what,
        program: program.to_owned(),
        kind: e.kind(),
    })?;
    let Some(mut stdout) = child.stdout.take() else {
        kill(&mut child).await;
        return Err(SourceError::Spawn {
            what,
            program: program.to_owned(),
            kind: std::io::ErrorKind::BrokenPipe,
        });
    };
    let outcome = tokio::time::timeout(timeout, async {
        let mut bytes = Vec::with_capacity(256);
        // Read one byte past the cap to tell "exactly the cap" from "more".
        let read = (&mut stdout)
            .take(cap as u64 + 1)
            .read_to_end(&mut bytes)
            .await;
        if read.is_err() || bytes.len() > cap {
            return None;
        }
        child.wait().await.ok().map(|status| (bytes, status))
    })
    .await;
    match outcome {
        Ok(Some((stdout, status))) => Ok(Finished { stdout, status }),
        Ok(None) => {
            kill(&mut child).await;
            Err(SourceError::TooLarge {
                what,
                program: program.to_owned(),
                limit: cap,
            })
        }
        Err(_) => {
            kill(&mut child).await;
            Err(SourceError::Timeout {
                what,
                program: program.to_owned(),
                timeout,
            })
        }
    }
}

/// Kill the helper's process group (or the helper alone where groups do not exist) and reap it.
async fn kill(child: &mut tokio::process::Child) {
    #[cfg(unix)]
    if let Some(pid) = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw)
    {
        // The group id is the child's pid (`process_group(0)`); ESRCH means it already ended.
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    let _ = child.start_kill();
    let _ = child.wait().await;
}

/// `exit status 3` / `killed by signal 9`, for errors.
pub(crate) fn describe(status: ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        if let Some(signal) = status.signal() {
            return format!("killed by signal {signal}");
        }
    }
    match status.code() {
        Some(code) => format!("exit status {code}"),
        None => "unknown exit status".to_owned(),
    }
}
