//! Catalog build cost on the GitHub REST description (13 MB, 1,223 operations).
//!
//! `catalog_build/github`: read the file, parse, normalize, sort, build views (the full
//! `catalog::build`). `catalog_serialize/github`: `serde_json::to_vec` of the result.
//! Needs the test corpora (`npm ci --prefix tests/peers`, or `PORTCULLIS_PEERS_DIR`).

use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion};

// Measure with the allocator the `portcullis` binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use portcullis::catalog::{build, BuildOptions};
use portcullis::config::{Config, LoadedConfig};

fn github_config() -> LoadedConfig {
    let peers = std::env::var_os("PORTCULLIS_PEERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/peers/node_modules")
        });
    let path = peers.join("@octokit/openapi/generated/api.github.com.json");
    assert!(
        path.is_file(),
        "{} missing: run `npm ci --prefix tests/peers`",
        path.display()
    );
    let config: Config = serde_json::from_value(serde_json::json!({
        "sources": { "gh": { "type": "openapi", "uri": path.to_string_lossy() } },
        "services": { "github": { "source": "gh" } },
    }))
    .expect("valid config");
    LoadedConfig {
        config,
        base_dir: peers,
        project_path: PathBuf::from("/nonexistent/.cli.json"),
        files: Vec::new(),
    }
}

fn bench(c: &mut Criterion) {
    let config = github_config();
    let options = BuildOptions::default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    c.bench_function("catalog_build/github", |b| {
        b.iter(|| {
            let outcome = runtime.block_on(build(&config, &options));
            assert_eq!(outcome.catalog.tools.len(), 1223);
            outcome
        })
    });
    let catalog = runtime.block_on(build(&config, &options)).catalog;
    c.bench_function("catalog_serialize/github", |b| {
        b.iter(|| serde_json::to_vec(&catalog).expect("serializable"))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
