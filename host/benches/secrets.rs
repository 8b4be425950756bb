//! Cost of credential resolution per call, per built-in secret source: the whole
//! `SecretResolver::credentials_for` (lookup, resolve, apply as a bearer header) for one tool
//! whose security names one scheme. Secrets are resolved on every call (no caching), so this
//! is what each tool call pays. `osKeychain` runs a fake `secret-tool` (a `/bin/sh` script
//! placed first on `PATH`): the process cost, not a real Secret Service round trip.
//!
//! Run: `cargo bench -p portcullis --bench secrets`.

use std::os::unix::fs::PermissionsExt as _;

use criterion::{criterion_group, criterion_main, Criterion};
use portcullis::catalog::{AuthAlternative, AuthRequirement, Tool};
use portcullis::secrets::{CallInfo, SecretResolver};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn tool() -> Tool {
    Tool {
        id: "svc:op".into(),
        service_id: "svc".into(),
        auth_alternatives: vec![AuthAlternative {
            requirements: vec![AuthRequirement {
                name: "token".into(),
                kind: "http".into(),
                scheme: "bearer".into(),
                ..AuthRequirement::default()
            }],
        }],
        ..Tool::default()
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "file-token\n").unwrap();
    let fake = dir.path().join("secret-tool");
    std::fs::write(&fake, "#!/bin/sh\nprintf 'kc-token\\n'\n").unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Before any thread exists: the fake keychain tool first on PATH, the env source's variable.
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::set_var("PATH", format!("{}:{path}", dir.path().display()));
    std::env::set_var("PORTCULLIS_BENCH_TOKEN", "env-token");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let tool = tool();
    let call = CallInfo::default();
    let mut group = c.benchmark_group("credentials_for");
    for (name, secret) in [
        (
            "literal",
            serde_json::json!({ "type": "literal", "value": "lit-token" }),
        ),
        (
            "env",
            serde_json::json!({ "type": "env", "value": "PORTCULLIS_BENCH_TOKEN" }),
        ),
        (
            "file",
            serde_json::json!({ "type": "file", "value": file.display().to_string() }),
        ),
        (
            "exec",
            serde_json::json!({ "type": "exec", "command": ["/bin/echo", "exec-token"] }),
        ),
        (
            "osKeychain_fake",
            serde_json::json!({ "type": "osKeychain", "value": "service=bench account=ci" }),
        ),
    ] {
        let secrets = serde_json::from_value(serde_json::json!({ "token": secret })).unwrap();
        let oauth = std::sync::Arc::new(portcullis::oauth::OAuthClients::in_memory().unwrap());
        let resolver = SecretResolver::with_oauth(Some(&secrets), oauth);
        let creds = rt.block_on(resolver.credentials_for(&tool, &call)).unwrap();
        assert_eq!(creds.headers.len(), 1, "{name}");
        group.bench_function(name, |b| {
            b.iter(|| rt.block_on(resolver.credentials_for(&tool, &call)).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
