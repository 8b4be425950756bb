//! Bearer-token validation cost per request, cold and warm, against the real identity provider.
//!
//! Starts the npm `oidc-provider` from `tests/peers/idp/issuer.mjs` (run `./tests/run` once, or
//! `npm ci --prefix tests/peers`), mints real access tokens over HTTP — RS256 and ES256 JWTs
//! through client credentials with resource indicators, and opaque tokens — and times
//! `Authenticator::validate` for each profile:
//!
//! - **cold**: the first time the runtime sees a token (JWT: header, key lookup, signature and
//!   claims; introspection: an RFC 7662 round trip to the provider);
//! - **warm**: the same token again (JWT: the verified-token cache; introspection: the result
//!   cache).
//!
//! The JWKS is fetched once at startup in both cases (that cost is per key set, not per token).
//!
//! ```sh
//! cargo bench -p portcullis --bench auth_validation            # N=1000 tokens per profile
//! AUTH_BENCH_N=300 cargo bench -p portcullis --bench auth_validation
//! ```
//! Prints one line per profile and phase: median and p99 in microseconds.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use portcullis::authn::{Authenticator, BearerToken, ServerAuth};
use serde_json::{json, Value};

const JWT_RS: &str = "https://runtime.local/api";
const JWT_ES: &str = "https://runtime.local/api-es";
const OPAQUE: &str = "https://runtime.local/opaque-api";

struct Idp(Child);

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn peers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/peers")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

async fn start_idp(http: &reqwest::Client) -> (Idp, String) {
    let port = free_port();
    let child = Command::new("node")
        .arg(peers_dir().join("idp/issuer.mjs"))
        .env("PORT", port.to_string())
        .env("SCOPES", "bundle:tickets tool:tickets:getTicket")
        .env("NODE_PATH", peers_dir().join("node_modules"))
        .current_dir(peers_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("node is required (the identity provider is the npm oidc-provider)");
    let idp = Idp(child);
    let issuer = format!("http://127.0.0.1:{port}");
    let discovery = format!("{issuer}/.well-known/openid-configuration");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if http
            .get(&discovery)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return (idp, issuer);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("oidc-provider did not start; run `npm ci --prefix tests/peers` first");
}

async fn mint(http: &reqwest::Client, issuer: &str, resource: &str, n: usize) -> Vec<String> {
    let mut tokens = Vec::with_capacity(n);
    for _ in 0..n {
        let answer: Value = http
            .post(format!("{issuer}/token"))
            .basic_auth("runtime-client", Some("runtime-secret"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "bundle:tickets"),
                ("resource", resource),
            ])
            .send()
            .await
            .expect("token endpoint")
            .json()
            .await
            .expect("token response");
        let token = answer["access_token"].as_str().expect("access_token");
        tokens.push(token.to_owned());
    }
    tokens
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

fn report(profile: &str, phase: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{profile:<22} {phase:<5} n={:<5} median {:>8.1} µs   p99 {:>8.1} µs",
        samples.len(),
        percentile(&samples, 0.5),
        percentile(&samples, 0.99)
    );
}

async fn measure(profile: &str, auth: &Authenticator, tokens: &[String]) {
    let tokens: Vec<BearerToken> = tokens.iter().map(|t| BearerToken::new(t.clone())).collect();
    let mut cold = Vec::with_capacity(tokens.len());
    for token in &tokens {
        let start = Instant::now();
        let caller = auth.validate(token).await;
        cold.push(start.elapsed());
        assert!(caller.is_ok(), "{profile}: a fresh token was refused");
    }
    let mut warm = Vec::with_capacity(tokens.len());
    for _ in 0..tokens.len() {
        let start = Instant::now();
        let caller = auth.validate(&tokens[0]).await;
        warm.push(start.elapsed());
        assert!(caller.is_ok(), "{profile}: a known token was refused");
    }
    report(profile, "cold", cold);
    report(profile, "warm", warm);
}

fn settings(value: Value) -> ServerAuth {
    serde_json::from_value(value).expect("valid auth settings")
}

fn main() {
    let n: usize = std::env::var("AUTH_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let http = reqwest::Client::new();
        let (_idp, issuer) = start_idp(&http).await;
        for (profile, resource) in [("oidc_jwks RS256", JWT_RS), ("oidc_jwks ES256", JWT_ES)] {
            let auth = Authenticator::from_settings(settings(json!({
                "validationProfile": "oidc_jwks", "issuer": issuer, "audience": resource,
            })))
            .await
            .expect("oidc_jwks settings");
            let tokens = mint(&http, &issuer, resource, n).await;
            measure(profile, &auth, &tokens).await;
        }
        let auth = Authenticator::from_settings(settings(json!({
            "validationProfile": "oauth2_introspection", "issuer": issuer, "audience": OPAQUE,
            "introspectionURL": format!("{issuer}/token/introspection"),
            "clientId": { "type": "literal", "value": "runtime-client" },
            "clientSecret": { "type": "literal", "value": "runtime-secret" },
        })))
        .await
        .expect("introspection settings");
        let tokens = mint(&http, &issuer, OPAQUE, n).await;
        measure("oauth2_introspection", &auth, &tokens).await;
    });
}
