//! Per-call cost of a credential from a WebAssembly plugin, side by side with the alternatives.
//!
//! | bench | what one timed call does |
//! |---|---|
//! | `*_isolated` (`prewarm.instances: 0`) | fresh store + instance, `init(config)`, the kind's function, validate, drop: the whole cost |
//! | `*_prewarmed` (default `prewarm`) | take a prepared instance, arm its budget, the kind's function, validate, hand it to the worker to drop |
//! | `*_prewarmed_async` | the server's path, timed inside a task on a runtime worker: semaphore permit, `block_in_place`, then as `*_prewarmed` (policy: with the pipeline's budget as deadline) |
//! | `*_back_to_back` | `*_prewarmed` called with no pause: the queue runs dry, so this is the sustained cost |
//! | `exec_sh_printf` | `sh -c 'printf token'` with captured output (the reference runtime's `exec`) |
//! | `exec_sh_printf_async` | the same through `tokio::process`, timed inside a runtime task (as `*_async`) |
//! | `native_env` | read the secret from an env var (no isolation at all) |
//!
//! `*_prewarmed` rows wait, untimed, until the plugin's queue is full again before each call:
//! they measure a call's latency when calls arrive slower than the worker refills (one
//! instance per isolated-call cost, on its own thread). Every instance still serves one call.
//!
//! Before criterion runs, a fixed-count pass prints median and p99 per variant (criterion does
//! not report tail latency). The components come from the `portcullis-test-artifacts` build script.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};

// Measure with the allocator the `portcullis` binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use portcullis::config::Config;
use portcullis::plugins::wit::{PolicyInput, RequestContext, SecretRequest};
use portcullis::plugins::{LoadedPlugin, PluginSet};
use portcullis::policy::PolicyQuery;

/// A fixed-count pass: label, iterations, one call returning its own duration.
type TailRow<'a> = (&'static str, usize, Box<dyn FnMut() -> Duration + 'a>);

fn plugins() -> PluginSet {
    let rego = serde_json::json!({
        "policies": { "portcullis.rego": include_str!("../../plugins/rego-policy/examples/portcullis.rego") },
        "data": { "frozen_services": ["billing"] }
    });
    let off = serde_json::json!({ "instances": 0 });
    let config: Config = serde_json::from_value(serde_json::json!({
        "plugins": {
            "secret": { "path": portcullis_test_artifacts::TEST_SECRET, "config": { "prefix": "p-" }, "prewarm": off },
            "secret-warm": { "path": portcullis_test_artifacts::TEST_SECRET, "config": { "prefix": "p-" } },
            "policy": { "path": portcullis_test_artifacts::TEST_POLICY, "prewarm": off },
            "policy-warm": { "path": portcullis_test_artifacts::TEST_POLICY },
            "rego": { "path": portcullis_test_artifacts::REGO_POLICY, "config": rego, "prewarm": off },
            "rego-warm": { "path": portcullis_test_artifacts::REGO_POLICY, "config": rego }
        }
    }))
    .expect("bench config");
    PluginSet::load(&config, Path::new("/")).expect("bench plugins load")
}

fn secret_query() -> SecretRequest {
    SecretRequest {
        reference: "literal:token".into(),
        service: "tickets".into(),
        scheme: "apiKey".into(),
        tool_id: "tickets:createTicket".into(),
        context: RequestContext {
            request_id: "bench".into(),
            principal: Some("alice".into()),
        },
    }
}

/// The policy pipeline's query as the plugin host receives it (the adapter's translation).
fn policy_query() -> PolicyInput {
    portcullis::policy::wasm::input(&PolicyQuery {
        request_id: "bench".into(),
        principal: Some("alice".into()),
        scopes: vec!["bundle:tickets".into()],
        tool_id: "tickets:createTicket".into(),
        service: "tickets".into(),
        method: Some("POST".into()),
        path: Some("/tickets".into()),
        mode: "discover".into(),
        arguments_json: r#"{"pathArgs":[],"flags":{},"body":{"title":"Printer jam"}}"#.into(),
        ..PolicyQuery::default()
    })
}

fn exec_secret() -> String {
    let out = std::process::Command::new("sh")
        .args(["-c", "printf token"])
        .output()
        .expect("sh runs");
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Median, p99 and mean of `n` calls, each timing itself.
fn percentiles(n: usize, mut f: impl FnMut() -> Duration) -> (Duration, Duration, Duration) {
    for _ in 0..n / 10 {
        f();
    }
    let mut samples: Vec<Duration> = (0..n).map(|_| f()).collect();
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / n as u32;
    (samples[n / 2], samples[n * 99 / 100], mean)
}

/// Time one call of `f`.
fn timed<R>(f: impl FnOnce() -> R) -> Duration {
    let start = Instant::now();
    std::hint::black_box(f());
    start.elapsed()
}

/// Wait, untimed and spinning (a server thread is busy with the request before it needs the
/// secret), until `plugin`'s prewarm worker is idle with instances ready, so the timed call
/// takes a prepared instance and nothing runs beside it.
fn refilled(plugin: &LoadedPlugin) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_micros(20) || !plugin.prewarm_settled() {
        std::hint::spin_loop();
    }
}

/// Wait for `plugin`'s queue ([`refilled`]), then time one call of `f`.
fn timed_prewarmed<R>(plugin: &LoadedPlugin, f: impl FnOnce() -> R) -> Duration {
    refilled(plugin);
    timed(f)
}

/// Time `call` inside a task on a runtime worker thread, as a request handler runs it.
fn timed_in_task<F>(runtime: &tokio::runtime::Runtime, call: F) -> Duration
where
    F: std::future::Future + Send + 'static,
    F::Output: Send,
{
    runtime
        .block_on(runtime.spawn(async move {
            let start = Instant::now();
            std::hint::black_box(call.await);
            start.elapsed()
        }))
        .expect("task")
}

fn bench(c: &mut Criterion) {
    let set = plugins();
    let get = |name: &str| -> Arc<LoadedPlugin> { set.get(name).expect(name).clone() };
    let (secret, secret_warm) = (get("secret"), get("secret-warm"));
    let (policy, policy_warm) = (get("policy"), get("policy-warm"));
    let (rego, rego_warm) = (get("rego"), get("rego-warm"));
    std::env::set_var("PORTCULLIS_BENCH_TOKEN", "token");
    let query = secret_query();
    let pquery = policy_query();
    assert_eq!(secret.resolve_secret(&query).unwrap(), "p-token");
    assert_eq!(secret_warm.resolve_secret(&query).unwrap(), "p-token");
    assert_eq!(exec_secret(), "token");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");

    let rows: [TailRow; 13] = [
        (
            "secret_isolated",
            5_000,
            Box::new(|| timed(|| secret.resolve_secret(&query).unwrap())),
        ),
        (
            "secret_prewarmed",
            5_000,
            Box::new(|| {
                timed_prewarmed(&secret_warm, || secret_warm.resolve_secret(&query).unwrap())
            }),
        ),
        (
            "secret_prewarmed_async",
            5_000,
            Box::new(|| {
                refilled(&secret_warm);
                let (plugin, query) = (secret_warm.clone(), query.clone());
                timed_in_task(&runtime, async move {
                    plugin.resolve_secret_async(query).await.unwrap()
                })
            }),
        ),
        (
            "secret_back_to_back",
            5_000,
            Box::new(|| timed(|| secret_warm.resolve_secret(&query).unwrap())),
        ),
        (
            "policy_isolated",
            5_000,
            Box::new(|| timed(|| policy.evaluate_policy(&pquery, None).unwrap())),
        ),
        (
            "policy_prewarmed",
            5_000,
            Box::new(|| {
                timed_prewarmed(&policy_warm, || {
                    policy_warm.evaluate_policy(&pquery, None).unwrap()
                })
            }),
        ),
        (
            "policy_prewarmed_async",
            5_000,
            Box::new(|| {
                refilled(&policy_warm);
                let (plugin, query) = (policy_warm.clone(), pquery.clone());
                // As the pipeline asks: with its budget's deadline, so the call runs in place.
                let deadline = Some(Instant::now() + Duration::from_millis(50));
                timed_in_task(&runtime, async move {
                    plugin.evaluate_policy_async(query, deadline).await.unwrap()
                })
            }),
        ),
        (
            "rego_policy_isolated",
            1_000,
            Box::new(|| timed(|| rego.evaluate_policy(&pquery, None).unwrap())),
        ),
        (
            "rego_policy_prewarmed",
            1_000,
            Box::new(|| {
                timed_prewarmed(&rego_warm, || {
                    rego_warm.evaluate_policy(&pquery, None).unwrap()
                })
            }),
        ),
        (
            "rego_policy_back_to_back",
            1_000,
            Box::new(|| timed(|| rego_warm.evaluate_policy(&pquery, None).unwrap())),
        ),
        ("exec_sh_printf", 500, Box::new(|| timed(exec_secret))),
        (
            "exec_sh_printf_async",
            500,
            Box::new(|| {
                timed_in_task(&runtime, async {
                    tokio::process::Command::new("sh")
                        .args(["-c", "printf token"])
                        .output()
                        .await
                        .expect("sh runs")
                })
            }),
        ),
        (
            "native_env",
            100_000,
            Box::new(|| timed(|| std::env::var("PORTCULLIS_BENCH_TOKEN").unwrap())),
        ),
    ];
    println!(
        "\n{:<28} {:>12} {:>12} {:>12}",
        "variant", "median", "p99", "mean"
    );
    for (name, n, mut f) in rows {
        let (median, p99, mean) = percentiles(n, &mut f);
        println!("{name:<28} {median:>12.2?} {p99:>12.2?} {mean:>12.2?}");
    }
    println!();

    let mut group = c.benchmark_group("secret");
    group.bench_function("plugin_isolated", |b| {
        b.iter(|| secret.resolve_secret(&query).unwrap())
    });
    group.bench_function("plugin_prewarmed", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    timed_prewarmed(&secret_warm, || secret_warm.resolve_secret(&query).unwrap())
                })
                .sum()
        })
    });
    group.bench_function("policy_isolated", |b| {
        b.iter(|| policy.evaluate_policy(&pquery, None).unwrap())
    });
    group.sample_size(20);
    group.bench_function("exec_sh_printf", |b| b.iter(exec_secret));
    group.sample_size(100);
    group.bench_function("native_env", |b| {
        b.iter(|| std::env::var("PORTCULLIS_BENCH_TOKEN").unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
