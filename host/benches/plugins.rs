//! Per-call cost of a credential from a WebAssembly plugin, side by side with the alternatives.
//!
//! | bench | what one iteration does |
//! |---|---|
//! | `secret/plugin_isolated` | fresh store + instance of `test-secret`, `init(config)`, `resolve`, validate, drop |
//! | `secret/policy_isolated` | the same for `test-policy` `evaluate` (a larger input record) |
//! | `secret/exec_sh_printf` | `sh -c 'printf token'` with captured output (the reference runtime's `exec`) |
//! | `secret/native_env` | read the secret from an env var (no isolation at all) |
//!
//! Before criterion runs, a fixed-count pass prints median and p99 per variant (criterion does
//! not report tail latency). Needs `./tests/plugins/build` (or `PORTCULLIS_PLUGIN_DIR`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};

// Measure with the allocator the `portcullis` binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use portcullis::config::Config;
use portcullis::plugins::{PluginSet, PolicyQuery, SecretQuery};

/// A fixed-count pass: label, iterations, one call.
type TailRow<'a> = (&'static str, usize, Box<dyn FnMut() + 'a>);

fn component(name: &str) -> PathBuf {
    let dir = std::env::var_os("PORTCULLIS_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"));
    let path = dir.join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} missing: run ./tests/plugins/build",
        path.display()
    );
    path
}

fn plugins() -> PluginSet {
    let config: Config = serde_json::from_value(serde_json::json!({
        "plugins": {
            "secret": { "path": component("test_secret"), "config": { "prefix": "p-" } },
            "policy": { "path": component("test_policy") },
            "rego": {
                "path": component("rego_policy"),
                "config": {
                    "policies": { "portcullis.rego": include_str!("../../plugins/rego-policy/examples/portcullis.rego") },
                    "data": { "frozen_services": ["billing"] }
                }
            }
        }
    }))
    .expect("bench config");
    PluginSet::load(&config, Path::new("/")).expect("bench plugins load")
}

fn secret_query() -> SecretQuery {
    SecretQuery {
        reference: "literal:token".into(),
        service: "tickets".into(),
        scheme: "apiKey".into(),
        tool_id: "tickets:createTicket".into(),
        request_id: "bench".into(),
        principal: Some("alice".into()),
    }
}

fn policy_query() -> PolicyQuery {
    PolicyQuery {
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
    }
}

fn exec_secret() -> String {
    let out = std::process::Command::new("sh")
        .args(["-c", "printf token"])
        .output()
        .expect("sh runs");
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Median and p99 of `n` timed calls.
fn percentiles(n: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    for _ in 0..n / 10 {
        f();
    }
    let mut samples: Vec<Duration> = (0..n)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    samples.sort();
    (samples[n / 2], samples[n * 99 / 100])
}

fn bench(c: &mut Criterion) {
    let set = plugins();
    let secret = set.get("secret").expect("secret plugin").clone();
    let policy = set.get("policy").expect("policy plugin").clone();
    let rego = set.get("rego").expect("rego plugin").clone();
    std::env::set_var("PORTCULLIS_BENCH_TOKEN", "token");
    let query = secret_query();
    let pquery = policy_query();
    assert_eq!(secret.resolve_secret(&query).unwrap(), "p-token");
    assert_eq!(exec_secret(), "token");

    let rows: [TailRow; 5] = [
        (
            "plugin_isolated (secret)",
            5_000,
            Box::new(|| {
                std::hint::black_box(secret.resolve_secret(&query).unwrap());
            }),
        ),
        (
            "policy_isolated",
            5_000,
            Box::new(|| {
                std::hint::black_box(policy.evaluate_policy(&pquery).unwrap());
            }),
        ),
        (
            "rego_policy_isolated",
            1_000,
            Box::new(|| {
                std::hint::black_box(rego.evaluate_policy(&pquery).unwrap());
            }),
        ),
        (
            "exec_sh_printf",
            500,
            Box::new(|| {
                std::hint::black_box(exec_secret());
            }),
        ),
        (
            "native_env",
            100_000,
            Box::new(|| {
                std::hint::black_box(std::env::var("PORTCULLIS_BENCH_TOKEN").unwrap());
            }),
        ),
    ];
    println!("\n{:<28} {:>12} {:>12}", "variant", "median", "p99");
    for (name, n, mut f) in rows {
        let (median, p99) = percentiles(n, &mut f);
        println!("{name:<28} {median:>12.2?} {p99:>12.2?}");
    }
    println!();

    let mut group = c.benchmark_group("secret");
    group.bench_function("plugin_isolated", |b| {
        b.iter(|| secret.resolve_secret(&query).unwrap())
    });
    group.bench_function("policy_isolated", |b| {
        b.iter(|| policy.evaluate_policy(&pquery).unwrap())
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
