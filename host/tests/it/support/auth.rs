//! Harness for runtime-auth tests: the real npm `oidc-provider` (tests/peers/idp/issuer.mjs),
//! a local JWKS server for crafted tokens, and a runtime with two services behind auth.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Router;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{json, Value};

use crate::support::{self, free_port, RecordingUpstream, TestRuntime};

pub const API: &str = "https://runtime.local/api";
pub const API_ES: &str = "https://runtime.local/api-es";
pub const OTHER: &str = "https://other.local/api";
pub const OPAQUE: &str = "https://runtime.local/opaque-api";

fn idp_dir() -> std::path::PathBuf {
    support::peer_scripts_dir().join("idp")
}

/// The real identity provider, killed on drop.
pub struct Idp {
    child: Child,
    pub port: u16,
    pub issuer: String,
    scopes: String,
    env: Vec<(String, String)>,
    http: reqwest::Client,
}

impl Idp {
    fn spawn(port: u16, scopes: &str, kid: &str, env: &[(String, String)]) -> Child {
        Command::new("node")
            .arg(idp_dir().join("issuer.mjs"))
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("PORT", port.to_string())
            .env("SCOPES", scopes)
            .env("KID", kid)
            .env("NODE_PATH", support::peers_dir())
            .current_dir(support::peers_dir().join(".."))
            .stdout(Stdio::null())
            .stderr(Self::stderr_file(port))
            .spawn()
            .expect("node is required for the identity-provider tests (tests/run installs peers)")
    }

    /// Where the provider's stderr goes, so a start that fails can say why.
    fn stderr_path(port: u16) -> std::path::PathBuf {
        std::env::temp_dir().join(format!(
            "portcullis-it-idp-{}-{port}.log",
            std::process::id()
        ))
    }

    fn stderr_file(port: u16) -> Stdio {
        std::fs::File::create(Self::stderr_path(port)).map_or_else(|_| Stdio::null(), Stdio::from)
    }

    /// Start the IdP granting `scopes`, with key ids suffixed by `kid`; wait for discovery.
    pub async fn start(scopes: &str, kid: &str) -> Self {
        Self::start_with(scopes, kid, &[]).await
    }

    /// As [`Idp::start`], with extra environment for issuer.mjs (e.g. `AUTH_METHODS`).
    pub async fn start_with(scopes: &str, kid: &str, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut idp = Self {
            child: Self::spawn(port, scopes, kid, &env),
            port,
            issuer: format!("http://127.0.0.1:{port}"),
            scopes: scopes.to_owned(),
            env,
            http: reqwest::Client::new(),
        };
        idp.wait_ready().await;
        idp
    }

    /// Wait for discovery. 60 s: on a loaded 2-core CI machine with many tests starting Node at
    /// once, a cold start has taken over 30 s. A failure names what answered instead (another
    /// test's server on a reused port) and the provider's stderr.
    async fn wait_ready(&mut self) {
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let mut last = String::from("no answer");
        while tokio::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "oidc-provider exited ({status}); is tests/peers installed (npm ci)? stderr: {}",
                    self.stderr()
                );
            }
            match self.http.get(&url).send().await {
                Ok(r) if r.status().is_success() => return,
                Ok(r) => last = format!("HTTP {}", r.status()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "oidc-provider did not serve discovery within 60 s at {url} (last: {last}); stderr: {}",
            self.stderr()
        );
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(Self::stderr_path(self.port)).unwrap_or_default()
    }

    /// Restart on the same port with new keys (key rotation).
    pub async fn rotate(&mut self, kid: &str) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Self::spawn(self.port, &self.scopes, kid, &self.env);
        self.wait_ready().await;
    }

    /// A client-credentials access token for `resource` with `scope`.
    pub async fn token(&self, scope: &str, resource: &str) -> String {
        let response: Value = self
            .http
            .post(format!("{}/token", self.issuer))
            .basic_auth("runtime-client", Some("runtime-secret"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", scope),
                ("resource", resource),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        response["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {response}"))
            .to_owned()
    }

    /// How many discovery documents and tokens (per grant type) the IdP has served.
    pub async fn counts(&self) -> Value {
        self.http
            .get(format!("{}/test/counts", self.issuer))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// How many tokens of `grant_type` the IdP issued.
    pub async fn issued(&self, grant_type: &str) -> u64 {
        self.counts().await[grant_type].as_u64().unwrap_or(0)
    }

    /// Play the person at the provider's devInteractions forms: open `authorization_url`, log
    /// in as `account`, consent, and return the redirect to the client (the callback URL with
    /// `code`, `state` and `iss`). Cookies are carried by hand between the steps.
    pub async fn authorize(&self, authorization_url: &str, account: &str) -> url::Url {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut cookies: std::collections::BTreeMap<String, String> = Default::default();
        let mut next = (authorization_url.to_owned(), None::<Vec<(&str, &str)>>);
        for _ in 0..10 {
            let jar = cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            let request = match &next.1 {
                Some(form) => http.post(&next.0).form(form),
                None => http.get(&next.0),
            };
            let response = request.header("cookie", jar).send().await.unwrap();
            for set in response.headers().get_all("set-cookie") {
                let pair = set.to_str().unwrap().split(';').next().unwrap();
                if let Some((k, v)) = pair.split_once('=') {
                    cookies.insert(k.to_owned(), v.to_owned());
                }
            }
            let base = url::Url::parse(&next.0).unwrap();
            let location = response
                .headers()
                .get("location")
                .map(|l| base.join(l.to_str().unwrap()).unwrap().to_string());
            let body = response.text().await.unwrap();
            next = match location {
                Some(location) if location.contains("/interaction/") => (location, None),
                Some(location) if location.starts_with(&self.issuer) => (location, None),
                Some(location) => return url::Url::parse(&location).unwrap(),
                None if body.contains(r#"name="prompt" value="login""#) => (
                    next.0,
                    Some(vec![
                        ("prompt", "login"),
                        ("login", account),
                        ("password", "x"),
                    ]),
                ),
                None if body.contains(r#"name="prompt" value="consent""#) => {
                    (next.0, Some(vec![("prompt", "consent")]))
                }
                None => panic!("unexpected page from the IdP: {body}"),
            };
        }
        panic!("the IdP did not redirect back within 10 steps");
    }

    /// Revoke a token at the IdP (RFC 7009).
    pub async fn revoke(&self, token: &str) {
        self.revoke_as(token, "runtime-client", "runtime-secret")
            .await;
    }

    /// Revoke a token issued to another client.
    pub async fn revoke_as(&self, token: &str, client: &str, secret: &str) {
        let status = self
            .http
            .post(format!("{}/token/revocation", self.issuer))
            .basic_auth(client, Some(secret))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "revocation failed: {status}");
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(Self::stderr_path(self.port));
    }
}

/// Test keys generated by node (PKCS#8 PEM private key, public JWK, SPKI PEM).
pub struct TestKey {
    pub pem: String,
    pub jwk: Value,
    pub public_pem: String,
}

pub struct Keys {
    pub rsa: TestKey,
    pub rsa2: TestKey,
    pub weak: TestKey,
    pub ec: TestKey,
    pub ed: TestKey,
}

pub fn keys() -> Keys {
    let out = Command::new("node")
        .arg(idp_dir().join("keys.mjs"))
        .output()
        .expect("node is required to generate test keys");
    let v: Value = serde_json::from_slice(&out.stdout).expect("keys.mjs output");
    let key = |name: &str| TestKey {
        pem: v[name]["pem"].as_str().unwrap().to_owned(),
        jwk: v[name]["jwk"].clone(),
        public_pem: v[name]["publicPem"].as_str().unwrap().to_owned(),
    };
    Keys {
        rsa: key("rsa"),
        rsa2: key("rsa2"),
        weak: key("weak"),
        ec: key("ec"),
        ed: key("ed"),
    }
}

/// A JWK with `kid` (and optional `alg`) added.
pub fn with_kid(key: &TestKey, kid: &str, alg: Option<&str>) -> Value {
    let mut jwk = key.jwk.clone();
    jwk["kid"] = kid.into();
    if let Some(alg) = alg {
        jwk["alg"] = alg.into();
    }
    jwk
}

/// A JWKS endpoint whose document the test controls; counts hits; can be switched off.
pub struct JwksServer {
    pub url: String,
    pub keys: Arc<Mutex<Value>>,
    pub hits: Arc<AtomicU64>,
    /// 0 = serve, otherwise answer with this status.
    pub fail: Arc<AtomicU16>,
}

pub async fn jwks_server(keys: Vec<Value>) -> JwksServer {
    let doc = Arc::new(Mutex::new(json!({ "keys": keys })));
    let hits = Arc::new(AtomicU64::new(0));
    let fail = Arc::new(AtomicU16::new(0));
    let (d, h, f) = (doc.clone(), hits.clone(), fail.clone());
    let app = Router::new().fallback(move || {
        let (d, h, f) = (d.clone(), h.clone(), f.clone());
        async move {
            h.fetch_add(1, Ordering::SeqCst);
            match f.load(Ordering::SeqCst) {
                0 => axum::Json(d.lock().unwrap().clone()).into_response(),
                code => StatusCode::from_u16(code).unwrap().into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    JwksServer {
        url,
        keys: doc,
        hits,
        fail,
    }
}

/// Sign `claims` with `header` and a PEM key of the header's algorithm family.
pub fn sign(header: &Header, claims: &Value, key: &TestKey) -> String {
    use jsonwebtoken::Algorithm::*;
    let encoding = match header.alg {
        RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => {
            EncodingKey::from_rsa_pem(key.pem.as_bytes()).unwrap()
        }
        ES256 | ES384 => EncodingKey::from_ec_pem(key.pem.as_bytes()).unwrap(),
        EdDSA => EncodingKey::from_ed_pem(key.pem.as_bytes()).unwrap(),
        _ => EncodingKey::from_secret(key.public_pem.as_bytes()).unwrap(),
    };
    jsonwebtoken::encode(header, claims, &encoding).unwrap()
}

/// RS256-sign with node (aws-lc refuses to sign with the weak keys some tests need).
pub fn node_sign_rs256(key: &TestKey, header: &Value, claims: &Value) -> String {
    let script = "const c=require('node:crypto');const e=process.env;\
        const b=s=>Buffer.from(s).toString('base64url');const d=b(e.JWT_H)+'.'+b(e.JWT_P);\
        process.stdout.write(d+'.'+c.sign('sha256',Buffer.from(d),e.JWT_KEY).toString('base64url'))";
    let out = Command::new("node")
        .arg("-e")
        .arg(script)
        .env("JWT_KEY", &key.pem)
        .env("JWT_H", header.to_string())
        .env("JWT_P", claims.to_string())
        .output()
        .expect("node");
    assert!(
        out.status.success(),
        "node signing failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// The catalog document: service `svc` (getItem, createItem) and service `other` (getOther).
pub async fn runtime_with_auth(auth: Value) -> (RecordingUpstream, TestRuntime) {
    let upstream = support::start_upstream().await;
    let paths = json!({
        "/items/{id}": { "get": { "operationId": "getItem", "security": [],
            "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }] } },
        "/items": { "post": { "operationId": "createItem", "security": [] } }
    });
    let other = json!({ "/other": { "get": { "operationId": "getOther", "security": [] } } });
    let config = json!({
        "cli": "1.0.0",
        "mode": { "default": "discover" },
        "sources": {
            "a": { "type": "openapi", "uri": "a.json" },
            "b": { "type": "openapi", "uri": "b.json" }
        },
        "services": { "svc": { "source": "a" }, "other": { "source": "b" } },
        "curation": { "toolSets": { "readers": { "allow": ["svc:getItem"], "deny": ["**"] } } },
        "agents": { "profiles": {
            "reader": { "mode": "curated", "toolSet": "readers" },
            "explorer": { "mode": "discover" }
        } },
        "runtime": { "server": { "auth": auth } }
    });
    let rt = support::start_runtime(
        config,
        &[
            ("a.json", support::openapi(&upstream.url, paths, json!({}))),
            ("b.json", support::openapi(&upstream.url, other, json!({}))),
        ],
    )
    .await;
    (upstream, rt)
}

/// A response as tests need it.
pub struct Reply {
    pub status: u16,
    pub challenge: Option<String>,
    pub retry_after: Option<String>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// Tool ids of a catalog response.
    pub fn tool_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.json()["catalog"]["tools"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|t| t["id"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }
}

async fn reply(response: reqwest::Response) -> Reply {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (challenge, retry_after) = (header("www-authenticate"), header("retry-after"));
    Reply {
        status: response.status().as_u16(),
        challenge,
        retry_after,
        body: response.text().await.unwrap(),
    }
}

/// GET `path` with an optional raw `Authorization` value.
pub async fn get(rt: &TestRuntime, path: &str, authorization: Option<&str>) -> Reply {
    let mut request = rt.client.get(format!("{}{path}", rt.url));
    if let Some(a) = authorization {
        request = request.header("authorization", a);
    }
    reply(request.send().await.unwrap()).await
}

/// GET the catalog with a bearer token.
pub async fn catalog(rt: &TestRuntime, token: &str) -> Reply {
    get(
        rt,
        "/v1/catalog/effective",
        Some(&format!("Bearer {token}")),
    )
    .await
}

/// Execute `tool_id` with a bearer token.
pub async fn execute(rt: &TestRuntime, token: &str, tool_id: &str) -> Reply {
    let response = rt
        .client
        .post(format!("{}/v1/tools/execute", rt.url))
        .bearer_auth(token)
        .json(&json!({ "toolId": tool_id, "pathArgs": if tool_id == "svc:getItem" { json!(["1"]) } else { json!([]) } }))
        .send()
        .await
        .unwrap();
    reply(response).await
}

/// Assert an RFC 6750 `invalid_token` rejection.
pub fn assert_invalid_token(reply: &Reply, case: &str) {
    assert_eq!(reply.status, 401, "{case}: {}", reply.body);
    let challenge = reply.challenge.as_deref().unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer realm=\"portcullis\"")
            && challenge.contains("error=\"invalid_token\"")
            && challenge.contains("resource_metadata=\""),
        "{case}: challenge {challenge:?}"
    );
    assert_eq!(reply.body.trim(), "authn_failed", "{case}");
}
