//! Supervised stdio children: spawn an MCP server process, watch it, and stop it.
//!
//! | event | what happens |
//! |---|---|
//! | spawn | `command args` with a **cleared** environment plus [`child_env`]: `PATH`, `HOME`, `TMPDIR`, `TZ` and the locale from the runtime, the names in `passEnv`, then the configured `env`; stdin/stdout carry newline-delimited JSON-RPC, stderr goes to the debug log |
//! | child exits on its own (crash, `kill -9`) | the [`Session`](super::Session) restarts it in the background after [`backoff`](super::session::backoff), without waiting for a call, and asks for a catalog rebuild |
//! | the session lets go of the child (config reload, shutdown, a broken session) | stdin is closed; the child gets [`STOP_GRACE`] to exit, then `SIGKILL` and is reaped |
//! | the runtime exits without closing the session | `kill_on_drop` still kills the child |
//!
//! The supervisor owns the [`tokio::process::Child`]; rmcp only sees its pipes (as
//! [`ChildPipes`]), so the process can be waited for and killed independently of the JSON-RPC
//! session, and dropping the session (its pipes) is how the supervisor learns to stop it.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use rmcp::service::{RoleClient, RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::async_rw::AsyncRwTransport;
use rmcp::transport::Transport;
use tokio::io::AsyncWriteExt as _;
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::{oneshot, watch};

use super::outbox::Outbox;
use super::McpError;

/// How long a child may take to exit after its stdin is closed before it is killed.
pub const STOP_GRACE: Duration = Duration::from_millis(500);

/// A freshly spawned child: the process for the supervisor, the pipes for rmcp.
pub(crate) struct Spawned {
    pub child: Child,
    pub pipes: ChildPipes,
    /// Fires when rmcp drops the pipes (the session over this child ended).
    pub released: oneshot::Receiver<()>,
}

/// Variables of the runtime every child gets: what a program needs to find its interpreter,
/// cache and locale, and nothing that usually carries a credential.
const BASELINE_ENV: [&str; 5] = ["PATH", "HOME", "TMPDIR", "TZ", "LANG"];

/// The whole environment of a child: [`BASELINE_ENV`], `LANGUAGE` and `LC_*` from the runtime,
/// then the runtime's values of `pass_env`, then `env` (which wins). A third-party MCP server
/// thus never sees another service's credential from the runtime's environment.
pub(crate) fn child_env(
    env: &BTreeMap<String, String>,
    pass_env: &[String],
) -> BTreeMap<String, String> {
    let locale = |name: &str| name == "LANGUAGE" || name.starts_with("LC_");
    let mut out: BTreeMap<String, String> = std::env::vars()
        .filter(|(name, _)| BASELINE_ENV.contains(&name.as_str()) || locale(name))
        .collect();
    for name in pass_env {
        if let Ok(value) = std::env::var(name) {
            out.insert(name.clone(), value);
        }
    }
    out.extend(env.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

/// Start `command` with exactly `env` as its environment (see [`child_env`]).
pub(crate) fn spawn(
    source_id: &str,
    command: &str,
    args: &[String],
    env: &BTreeMap<String, String>,
    outbox: Arc<Outbox>,
) -> Result<Spawned, McpError> {
    let mut child = tokio::process::Command::new(command)
        .args(args)
        .env_clear()
        .envs(env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| McpError::Unavailable(format!("spawning {command:?}: {e}")))?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(McpError::Unavailable(format!(
            "spawning {command:?}: no stdio pipes"
        )));
    };
    if let Some(stderr) = child.stderr.take() {
        log_stderr(source_id.to_owned(), stderr);
    }
    let (release, released) = oneshot::channel();
    Ok(Spawned {
        child,
        pipes: ChildPipes {
            // rmcp reads and frames stdout; writes go through `stdin` below, so the outbox
            // counts a request only once the pipe is really being written to.
            io: AsyncRwTransport::new_client(stdout, tokio::io::sink()),
            stdin: Arc::new(tokio::sync::Mutex::new(Some(stdin))),
            outbox,
            _release: release,
        },
        released,
    })
}

/// How a supervised child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// It exited by itself while in use: restart it.
    Crashed,
    /// We stopped it (the session let go of it, or the source was closed).
    Stopped,
}

/// Wait until the child exits by itself, the session lets go of it, or `stop` turns true
/// (or its sender is dropped); in the last two cases stop the child.
pub(crate) async fn watch(
    source_id: &str,
    child: &mut Child,
    released: oneshot::Receiver<()>,
    mut stop: watch::Receiver<bool>,
) -> Ended {
    let ended = tokio::select! {
        status = child.wait() => {
            match status {
                Ok(status) => tracing::warn!(source = %source_id, "MCP stdio server exited ({status})"),
                Err(e) => tracing::warn!(source = %source_id, "MCP stdio server could not be waited for: {e}"),
            }
            return Ended::Crashed;
        }
        _ = released => Ended::Stopped,
        _ = stop.wait_for(|stop| *stop) => Ended::Stopped,
    };
    // The pipes are gone or going, so the child has seen EOF on stdin: the MCP way to ask a
    // stdio server to exit. One that ignores it is killed.
    if tokio::time::timeout(STOP_GRACE, child.wait())
        .await
        .is_err()
    {
        if let Err(e) = child.kill().await {
            tracing::warn!(source = %source_id, "could not kill the MCP stdio server: {e}");
        }
    }
    ended
}

/// The child's stdin/stdout as an rmcp transport; dropping it tells the supervisor.
pub(crate) struct ChildPipes {
    io: AsyncRwTransport<RoleClient, ChildStdout, tokio::io::Sink>,
    stdin: Arc<tokio::sync::Mutex<Option<ChildStdin>>>,
    outbox: Arc<Outbox>,
    _release: oneshot::Sender<()>,
}

impl Transport<RoleClient> for ChildPipes {
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl std::future::Future<Output = Result<(), Self::Error>> + Send + 'static {
        let counted = Outbox::counts(&item);
        let outbox = self.outbox.clone();
        let stdin = self.stdin.clone();
        // Newline-delimited JSON, as rmcp's codec frames it.
        let line = serde_json::to_vec(&item).map(|mut line| {
            line.push(b'\n');
            line
        });
        async move {
            let line = line.map_err(std::io::Error::from)?;
            let mut stdin = stdin.lock().await;
            let Some(pipe) = stdin.as_mut() else {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::NotConnected,
                    "the stdio session is closed",
                ));
            };
            outbox.sending(counted);
            let result = async {
                pipe.write_all(&line).await?;
                pipe.flush().await
            }
            .await;
            if result.as_ref().is_err_and(pipe_unread) {
                outbox.not_delivered(counted);
            }
            result
        }
    }

    fn receive(
        &mut self,
    ) -> impl std::future::Future<Output = Option<RxJsonRpcMessage<RoleClient>>> + Send {
        self.io.receive()
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        // Closing stdin is how a stdio server is asked to exit.
        drop(self.stdin.lock().await.take());
        self.io.close().await
    }
}

/// A write error that proves the child never read the message: no process had the pipe open
/// (it had exited), or the pipe was already closed on our side.
pub(crate) fn pipe_unread(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::NotConnected
    )
}

/// A stdio server's stderr goes to the log (debug), line by line, never to the caller.
fn log_stderr(source: String, stderr: tokio::process::ChildStderr) {
    use tokio::io::AsyncBufReadExt as _;
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::debug!(source = %source, "mcp stderr: {line}");
        }
    });
}
