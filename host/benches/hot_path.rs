//! Allocations per tool call on the hot path (issue #16): `POST /v1/tools/execute` of the
//! bundled tickets API's `getHealth` through an in-process runtime, with durable audit, against
//! the demo upstream, and `GET /v1/runtime/info` as the inbound-HTTP baseline.
//!
//! A counting global allocator ([`stats_alloc`]) counts the whole process: the load generator,
//! the upstream and the runtime under test. The same number of `GET /health` calls straight to
//! the upstream with the same client is measured too, and subtracted, so the figure is what the
//! runtime itself allocates per call (within the few allocations a POST costs the client more
//! than a GET).
//!
//! ```sh
//! cargo bench -p portcullis --bench hot_path            # HOT_PATH_N=20000 calls by default
//! ```
//!
//! Prints allocations and allocated bytes per request for each route; no timing is asserted.

use std::sync::Arc;

use portcullis::app::runtime::{Runtime, RuntimeOptions};
use portcullis::audit::AuditOptions;
use portcullis::config::ScopePaths;
use portcullis::server;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

// Counts every thread's allocations (around the system allocator: the figure is a count, not a
// time). The runtime's share is the difference between a route through the runtime and the same
// number of plain `GET /health` calls to the upstream with the same client.
#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

const KEY: &str = "bench-key-0123456789";
const CONCURRENCY: usize = 16;

fn main() {
    let n: u64 = std::env::var("HOT_PATH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let load = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let served = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();

    let upstream = load.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(portcullis::dev::upstream::serve(
            listener,
            Some(KEY.to_owned()),
        ));
        url
    });
    std::fs::write(
        dir.path().join("tickets.openapi.yaml"),
        portcullis::dev::TICKETS_OPENAPI.replace("http://127.0.0.1:9000", &upstream),
    )
    .unwrap();
    let config = serde_json::json!({
        "cli": "1.0.0", "mode": {"default": "discover"}, "runtime": {"mode": "remote"},
        "sources": {"s": {"type": "openapi", "uri": "tickets.openapi.yaml"}},
        "services": {"tickets": {"source": "s"}},
        "secrets": {"demoKey": {"type": "literal", "value": KEY}}
    });
    std::fs::write(
        dir.path().join(".cli.json"),
        serde_json::to_vec(&config).unwrap(),
    )
    .unwrap();

    let url = served.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state_dir = dir.path().join("state");
        let options = RuntimeOptions {
            scopes: ScopePaths {
                project: dir.path().join(".cli.json"),
                ..ScopePaths::default()
            },
            instance_id: "bench".into(),
            audit_path: state_dir.join("audit.log"),
            cache_dir: state_dir.join("cache"),
            state_dir: state_dir.clone(),
            url: url.clone(),
            settings: Arc::new(portcullis::app::Settings),
        };
        let audit = AuditOptions::for_instance(options.audit_path.clone(), &state_dir);
        let runtime = Runtime::start_with_audit(options, audit).await.unwrap();
        tokio::spawn(server::serve(listener, runtime));
        url
    });

    let execute = serde_json::json!({"toolId": "tickets:getHealth", "pathArgs": [], "flags": {}});
    let routes: [(&str, Option<&serde_json::Value>, String); 3] = [
        (
            "GET /health on the upstream (client + upstream only)",
            None,
            format!("{upstream}/health"),
        ),
        (
            "GET /v1/runtime/info",
            None,
            format!("{url}/v1/runtime/info"),
        ),
        (
            "POST /v1/tools/execute tickets:getHealth",
            Some(&execute),
            format!("{url}/v1/tools/execute"),
        ),
    ];
    println!("{n} requests per route, {CONCURRENCY} concurrent, durable audit on");
    for (name, body, target) in routes {
        let client = reqwest::Client::new();
        let run = |count: u64| {
            load.block_on(async {
                let tasks: Vec<_> = (0..CONCURRENCY as u64)
                    .map(|i| {
                        let (client, target) = (client.clone(), target.clone());
                        let body = body.cloned();
                        let share =
                            count / CONCURRENCY as u64 + u64::from(i < count % CONCURRENCY as u64);
                        tokio::spawn(async move {
                            for _ in 0..share {
                                let request = match &body {
                                    Some(body) => client.post(&target).json(body),
                                    None => client.get(&target),
                                };
                                let response = request.send().await.unwrap();
                                assert_eq!(response.status(), 200);
                                let bytes = response.bytes().await.unwrap();
                                assert!(!bytes.is_empty());
                            }
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.unwrap();
                }
            })
        };
        run(2_000); // warm-up: pools, caches, connection set-up
        let region = Region::new(GLOBAL);
        run(n);
        let stats = region.change();
        let allocs = (stats.allocations + stats.reallocations) as f64 / n as f64;
        let bytes =
            (stats.bytes_allocated + stats.bytes_reallocated.max(0) as usize) as f64 / n as f64;
        println!("{name:<55} {allocs:>8.1} allocations/request {bytes:>10.0} bytes/request (whole process)");
    }
}
