//! Cost of a cached OAuth token per call: what `oauth2` secrets and MCP transport OAuth pay on
//! every call once a token is cached (resolve the client id, derive the cache key, take the
//! key's single-flight lock, check expiry, clone the token), and the whole credential
//! resolution of a tool whose security is one `oauth2` requirement (lookup + token + applying
//! `Authorization: Bearer`). A static `literal` bearer secret is measured alongside for
//! comparison. The token comes once from a local token endpoint; no network in the loop.
//!
//! Run: `cargo bench -p portcullis --bench oauth`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::routing::post;
use axum::{Json, Router};
use criterion::{criterion_group, criterion_main, Criterion};
use portcullis::catalog::{AuthAlternative, AuthRequirement, Tool};
use portcullis::config::{Secret, SecretType};
use portcullis::oauth::{AuthMethod, ClientSpec, Mode, OAuthClients, Storage};
use portcullis::secrets::{CallInfo, SecretResolver};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn literal(value: &str) -> Secret {
    Secret {
        kind: Some(SecretType::Literal),
        value: Some(value.into()),
        ..Secret::default()
    }
}

async fn token_endpoint() -> String {
    let app = Router::new().route(
        "/token",
        post(|| async {
            Json(serde_json::json!({"access_token": "a".repeat(800), "expires_in": 3600}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn tool(scheme: &str, kind: &str, http_scheme: &str) -> Tool {
    Tool {
        id: "svc:op".into(),
        service_id: "svc".into(),
        auth_alternatives: vec![AuthAlternative {
            requirements: vec![AuthRequirement {
                name: scheme.into(),
                kind: kind.into(),
                scheme: http_scheme.into(),
                scopes: vec!["tools:read".into()],
                ..AuthRequirement::default()
            }],
        }],
        ..Tool::default()
    }
}

fn bench(c: &mut Criterion) {
    // block_on on a current-thread runtime costs well under a microsecond per iteration; the
    // token endpoint task runs inside it for the one initial fetch.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = rt.block_on(token_endpoint());
    let clients = Arc::new(OAuthClients::in_memory().unwrap());
    let spec = ClientSpec {
        mode: Mode::ClientCredentials,
        token_url: Some(url.parse().unwrap()),
        authorization_url: None,
        issuer: None,
        client_id: literal("client"),
        client_secret: Some(literal("secret")),
        scopes: vec!["tools:read".into()],
        audience: Some("https://api.test".into()),
        auth_method: Some(AuthMethod::Basic),
        storage: Storage::Memory,
        redirect_uri: None,
    };
    rt.block_on(clients.bearer(&spec, None)).unwrap();
    c.bench_function("oauth/cached_token", |b| {
        b.iter(|| rt.block_on(clients.bearer(&spec, None)).unwrap())
    });

    let secrets: BTreeMap<String, Secret> = serde_json::from_value(serde_json::json!({
        "oauth": { "type": "oauth2", "mode": "clientCredentials", "tokenURL": url,
            "clientId": { "type": "literal", "value": "client" },
            "clientSecret": { "type": "literal", "value": "secret" },
            "audience": "https://api.test", "tokenStorage": "memory" },
        "bearer": { "type": "literal", "value": "a".repeat(800) },
    }))
    .unwrap();
    let resolver = SecretResolver::with_oauth(Some(&secrets), clients.clone());
    let oauth_tool = tool("oauth", "oauth2", "");
    rt.block_on(resolver.credentials_for(&oauth_tool, &CallInfo::default()))
        .unwrap();
    c.bench_function("credentials/oauth2_cached", |b| {
        b.iter(|| {
            rt.block_on(resolver.credentials_for(&oauth_tool, &CallInfo::default()))
                .unwrap()
        })
    });
    let literal_tool = tool("bearer", "http", "bearer");
    c.bench_function("credentials/literal_bearer", |b| {
        b.iter(|| {
            rt.block_on(resolver.credentials_for(&literal_tool, &CallInfo::default()))
                .unwrap()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
