//! MCP tool-call latency: one `tools/call` of server-everything's `echo` through the pooled
//! session (what Portcullis does) versus a fresh session per call (what the open-cli runtime
//! does: spawn or connect, `initialize`, call, close), over stdio and streamable HTTP.
//!
//! Needs the test peers (`npm ci --prefix tests/peers`, or `PORTCULLIS_PEERS_DIR`).
//! Run: `cargo bench -p portcullis --bench mcp_call`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use portcullis::mcp::settings::{Remote, Transport};
use portcullis::mcp::{McpPool, SourceSettings};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn everything() -> PathBuf {
    let peers = std::env::var_os("PORTCULLIS_PEERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/peers/node_modules")
        });
    let bin = peers.join(".bin/mcp-server-everything");
    assert!(
        bin.exists(),
        "{} missing: run `npm ci --prefix tests/peers`",
        bin.display()
    );
    bin
}

fn settings(transport: Transport) -> SourceSettings {
    SourceSettings {
        id: "everything".into(),
        transport,
        oauth: None,
        disabled_tools: Vec::new(),
        call_timeout: portcullis::mcp::settings::DEFAULT_CALL_TIMEOUT,
    }
}

fn arguments() -> serde_json::Map<String, serde_json::Value> {
    serde_json::json!({"message": "bench"})
        .as_object()
        .unwrap()
        .clone()
}

/// One call on a session of a pool that lives only for that call.
async fn fresh_call(settings: &SourceSettings) {
    let pool = McpPool::new().unwrap();
    pool.sync(vec![settings.clone()]).await;
    let session = pool.session("everything").unwrap();
    session.call_tool("echo", arguments(), None).await.unwrap();
    pool.shutdown().await;
}

fn start_http_server() -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(everything())
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..300 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, format!("http://127.0.0.1:{port}/mcp"))
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (mut server, url) = start_http_server();
    let cases = [
        (
            "stdio",
            settings(Transport::Stdio {
                command: everything().to_string_lossy().into_owned(),
                args: vec!["stdio".into()],
                env: Default::default(),
                pass_env: Vec::new(),
            }),
        ),
        (
            "streamable-http",
            settings(Transport::StreamableHttp(Remote {
                url: url.parse().unwrap(),
                headers: Default::default(),
                header_secrets: Default::default(),
            })),
        ),
    ];
    let mut group = c.benchmark_group("mcp_call");
    for (name, settings) in &cases {
        let pool = McpPool::new().unwrap();
        rt.block_on(pool.sync(vec![settings.clone()]));
        let session = pool.session("everything").unwrap();
        rt.block_on(session.call_tool("echo", arguments(), None))
            .unwrap();
        group.sample_size(100);
        group.bench_function(format!("{name}/pooled_session"), |b| {
            b.iter(|| {
                rt.block_on(session.call_tool("echo", arguments(), None))
                    .unwrap()
            })
        });
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(20));
        group.bench_function(format!("{name}/fresh_session_per_call"), |b| {
            b.iter(|| rt.block_on(fresh_call(settings)))
        });
        rt.block_on(pool.shutdown());
    }
    group.finish();
    let _ = server.kill();
    let _ = server.wait();
}

criterion_group!(benches, bench);
criterion_main!(benches);
