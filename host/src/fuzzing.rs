//! Fuzzing entry points: one panic-free function per target, shared by the cargo-fuzz crate
//! (`host/fuzz/`, nightly) and the stable smoke run (`host/tests/it/fuzz_smoke.rs`).
//!
//! Every function takes arbitrary bytes, must never panic, and asserts cheap invariants with
//! `assert!` (a failed invariant is a crash the fuzzer reports). Inputs that carry two parts
//! split them at the first NUL byte.
//!
//! | target | drives | invariants beyond "no panic" |
//! |---|---|---|
//! | [`bearer_token`] | `Authorization` parsing ([`crate::authn::header`]), JWT header decode, key lookup in a fixed in-memory key set ([`crate::authn::jwks`]), signature check, claims ([`crate::authn::claims`]); fuzzed claims are also signed with the fixed key so they reach the claim checks behind the signature | a bearer token is non-empty b64token text; scopes are non-empty without spaces; a principal is non-empty and `client:` only when it came from `client_id` |
//! | [`config_load`] | `.cli.json` load, schema, merge and validation ([`crate::app::load`]) of a project scope and an optional local scope, written to a temp dir | loading is deterministic (same result twice) |
//! | [`openapi`] | the OpenAPI loader, JSON or YAML ([`crate::catalog::openapi::parse`]), and normalisation, local and remote | every tool id is valid and unique |
//! | [`audit_verify`] | audit verification ([`crate::audit::verify`]) of fuzzed log and checkpoint bytes, and of a valid log with one flipped byte | a log with a flipped byte never verifies (the one benign change, the checkpoint file's final newline turned into other JSON whitespace, is allowed) |
//! | [`approvals`] | strict JSON ([`crate::policy::strict_json`]) and approval canonicalisation ([`crate::policy::approvals`]) | canonical JSON is the same under key reorder and is a fixed point (canonicalising it again changes nothing) |
//! | [`mcp_message`] | the MCP door's message rules ([`crate::server::mcp_door`]): JSON-RPC parsing, the stateless 2026-07-28 ladder against fuzzed routing headers, tool naming, argument decoding for a fixed OpenAPI tool | an error carries a JSON-RPC code the door defines and the request's id; a request id is a string or an integer; an MCP tool name is 1-128 characters of `[A-Za-z0-9_.-]` and a function of the id; decoded path arguments are exactly the tool's path parameters |
//! | [`url_build`] | server-variable resolution ([`crate::catalog::servers`]) and upstream URL building ([`crate::upstream::request`]) | the caller's path arguments never change the URL's scheme, host, port or number of path segments, nor its query or fragment unless the document's path template itself has a `?` or `#` |

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::{Map, Value};

fn split_nul(data: &[u8]) -> (&[u8], Option<&[u8]>) {
    match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    }
}

// ---------------------------------------------------------------------------------------------
// (1) bearer tokens

/// A fixed Ed25519 key pair, for fuzzing only (it signs nothing outside this module).
const FUZZ_ED25519_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIPyJp1eXZNi2OKha6j1RDzNMNZZ9IVl8w2bv7Aa+dwP2
-----END PRIVATE KEY-----
";
/// Its public half as a JWKS, with a second (RSA) key so `kid` lookup has a choice.
const FUZZ_JWKS: &str = r#"{"keys":[
 {"kty":"OKP","crv":"Ed25519","kid":"fuzz-ed","x":"s3S8hOPy0QEuVjkYBHGeB74gA147nbqtaZRV13mkGY0"},
 {"kty":"RSA","kid":"fuzz-rsa","alg":"RS256","e":"AQAB","n":"gP____________________________________________________________________________________________________________________________________________________________________________________________________________________________________________________________________________________________________________________________________________________w"}
]}"#;
const FUZZ_ISSUER: &str = "https://idp.fuzz.example";
const FUZZ_AUDIENCE: &str = "https://runtime.fuzz.example";
const FUZZ_NOW: u64 = 1_800_000_000;

fn fuzz_keys() -> &'static crate::authn::jwks::KeySet {
    static KEYS: OnceLock<crate::authn::jwks::KeySet> = OnceLock::new();
    KEYS.get_or_init(|| crate::authn::jwks::parse_key_set(FUZZ_JWKS.as_bytes()).unwrap_or_default())
}

fn fuzz_signing_key() -> Option<&'static jsonwebtoken::EncodingKey> {
    static KEY: OnceLock<Option<jsonwebtoken::EncodingKey>> = OnceLock::new();
    KEY.get_or_init(|| jsonwebtoken::EncodingKey::from_ed_pem(FUZZ_ED25519_PEM.as_bytes()).ok())
        .as_ref()
}

fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

/// Run every claim check on `claims` and assert what a successful one promises.
fn check_claims(claims: &Map<String, Value>) {
    use crate::authn::claims::{self, ScopeClaim, CLIENT_PRINCIPAL_PREFIX};
    let _ = claims::check_times(claims, FUZZ_NOW, 60, Some(3600));
    let _ = claims::check_times(claims, FUZZ_NOW, 0, None);
    let _ = claims::check_start(claims, FUZZ_NOW, 60);
    let _ = claims::check_audience(claims, FUZZ_AUDIENCE);
    let _ = claims::check_issuer(claims, FUZZ_ISSUER);
    for which in [ScopeClaim::Scope, ScopeClaim::Scp] {
        if let Ok(scopes) = claims::scopes(claims, which) {
            for scope in scopes {
                assert!(!scope.is_empty() && !scope.contains(' '), "scope {scope:?}");
            }
        }
    }
    if let Ok(principal) = claims::principal(claims) {
        assert!(!principal.is_empty());
        let from_sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty());
        if from_sub {
            assert!(!principal.starts_with(CLIENT_PRINCIPAL_PREFIX));
        } else {
            assert!(principal.starts_with(CLIENT_PRINCIPAL_PREFIX));
        }
    }
    let _ = claims::lineage(claims);
}

/// The oidc profile's checks, in its order, against the fixed key set.
fn validate_token(token: &str) {
    use base64::Engine as _;
    use jsonwebtoken::{Algorithm, Validation};
    let Ok(header) = jsonwebtoken::decode_header(token) else {
        return;
    };
    let _ = crate::authn::oidc::normalize_typ(header.typ.as_deref().unwrap_or(""));
    for alg in [
        header.alg,
        Algorithm::EdDSA,
        Algorithm::RS256,
        Algorithm::ES256,
    ] {
        let _ = fuzz_keys().find(header.kid.as_deref(), alg);
    }
    // The unverified payload goes through the claim checks too: they must hold on any input.
    if let Some(payload) = token.split('.').nth(1) {
        if let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload) {
            if let Ok(claims) = serde_json::from_slice::<Map<String, Value>>(&bytes) {
                check_claims(&claims);
            }
        }
    }
    let Some(key) = fuzz_keys().find(header.kid.as_deref(), header.alg) else {
        return;
    };
    let mut validation = Validation::new(header.alg);
    validation.leeway = 60;
    // Times are checked against the fixed FUZZ_NOW by claims::check_times, not the clock.
    validation.validate_nbf = false;
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    validation.set_issuer(&[FUZZ_ISSUER]);
    validation.set_audience(&[FUZZ_AUDIENCE]);
    if let Ok(data) = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation) {
        check_claims(&data.claims);
    }
}

/// Target (1): bearer-token parsing and validation.
///
/// The input is an `Authorization` header value (a second one after a NUL). When the part
/// after the NUL is a JSON object, it is also signed as claims with the fixed key and the
/// resulting token validated, so fuzzed claims reach the checks behind the signature.
pub fn bearer_token(data: &[u8]) {
    use crate::authn::{credentials, Credentials};
    let (first, second) = split_nul(data);
    let mut headers = http::HeaderMap::new();
    if let Ok(value) = http::HeaderValue::from_bytes(first) {
        headers.append(http::header::AUTHORIZATION, value);
    }
    if let Some(Ok(value)) = second.map(http::HeaderValue::from_bytes) {
        headers.append(http::header::AUTHORIZATION, value);
    }
    let count = headers.get_all(http::header::AUTHORIZATION).iter().count();
    match credentials(&headers) {
        Credentials::Bearer(token) => {
            assert_eq!(count, 1);
            assert!(is_b64token(token.expose()), "bearer token is not b64token");
            validate_token(token.expose());
        }
        Credentials::Ambiguous => assert!(count > 1),
        Credentials::None => assert_eq!(count, 0),
        Credentials::Malformed => {}
    }
    validate_token(&String::from_utf8_lossy(first));
    let _ = crate::authn::jwks::parse_key_set(first);

    if let (Some(claims), Some(key)) = (second, fuzz_signing_key()) {
        if let Ok(claims) = serde_json::from_slice::<Map<String, Value>>(claims) {
            let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
            header.kid = Some("fuzz-ed".into());
            if let Ok(token) = jsonwebtoken::encode(&header, &claims, key) {
                validate_token(&token);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// (2) .cli.json load + merge

fn scratch_dir(name: &str) -> Option<PathBuf> {
    let thread = format!("{:?}", std::thread::current().id())
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>();
    let dir = std::env::temp_dir().join(format!(
        "portcullis-fuzz-{name}-{}-{thread}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir)
}

/// Target (2): `.cli.json` load, schema, merge and validation.
///
/// The input is the project scope; a part after a NUL is the local scope merged over it.
pub fn config_load(data: &[u8]) {
    use crate::app::load;
    use crate::config::ScopePaths;
    let Some(dir) = scratch_dir("config") else {
        return;
    };
    let (project, local) = split_nul(data);
    let project_path = dir.join(".cli.json");
    let local_path = dir.join(".cli.local.json");
    if std::fs::write(&project_path, project).is_err() {
        return;
    }
    let local_written = match local {
        Some(bytes) => std::fs::write(&local_path, bytes).is_ok(),
        None => {
            let _ = std::fs::remove_file(&local_path);
            false
        }
    };
    let paths = ScopePaths {
        managed: None,
        user: None,
        project: project_path,
        local: local_written.then_some(local_path),
    };
    let first = load(&paths);
    let second = load(&paths);
    match (&first, &second) {
        (Ok(a), Ok(b)) => assert_eq!(a.config, b.config),
        (Err(a), Err(b)) => {
            assert_eq!(a, b);
            let _ = a.to_string();
        }
        _ => panic!("loading the same files twice gave different outcomes"),
    }
}

// ---------------------------------------------------------------------------------------------
// (3) OpenAPI loader

fn spec_url() -> &'static url::Url {
    static URL: OnceLock<url::Url> = OnceLock::new();
    URL.get_or_init(|| {
        url::Url::parse("https://specs.fuzz.example/apis/openapi.json")
            .unwrap_or_else(|_| unreachable!("a valid literal URL"))
    })
}

/// Target (3): the OpenAPI loader (JSON or YAML by content) and normalisation.
pub fn openapi(data: &[u8]) {
    use crate::catalog::normalize::{normalize, valid_tool_id};
    let Ok(doc) = crate::catalog::openapi::parse(data) else {
        return;
    };
    for spec in [None, Some(spec_url())] {
        if let Ok(tools) = normalize(&doc, "fuzz", spec) {
            let mut seen = std::collections::HashSet::new();
            for tool in &tools.tools {
                assert!(valid_tool_id(&tool.id), "invalid tool id {:?}", tool.id);
                assert!(seen.insert(tool.id.as_str()), "duplicate id {:?}", tool.id);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// (4) audit verify

fn audit_key() -> &'static crate::audit::chain::AuditKey {
    static KEY: OnceLock<crate::audit::chain::AuditKey> = OnceLock::new();
    KEY.get_or_init(|| crate::audit::chain::AuditKey::from_bytes(&[0x5a; 32]))
}

/// A valid four-record log and its checkpoints (after records 2 and 4).
fn valid_audit_log() -> &'static (Vec<u8>, Vec<u8>) {
    static LOG: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    LOG.get_or_init(|| {
        let key = audit_key();
        let mut log = Vec::new();
        let mut marks = Vec::new();
        let mut chain = String::new();
        for seq in 1..=4u64 {
            let body = serde_json::json!({
                "seq": seq,
                "ts": "2026-01-01T00:00:00Z",
                "eventType": "tool_call",
                "toolId": format!("svc:op{seq}"),
                "decision": "allow",
            })
            .to_string();
            let (line, next) = key.seal(&chain, body.as_bytes());
            log.extend_from_slice(&line);
            chain = next;
            if seq % 2 == 0 {
                let mark = crate::audit::verify::Checkpoint::signed(
                    key,
                    seq,
                    &chain,
                    "2026-01-01T00:00:00Z".into(),
                );
                if let Ok(text) = serde_json::to_string(&mark) {
                    marks.extend_from_slice(text.as_bytes());
                    marks.push(b'\n');
                }
            }
        }
        (log, marks)
    })
}

/// Target (4): audit verification.
///
/// First byte even: the rest is a log (checkpoints after a NUL, and a second, current file
/// after another NUL), verified as a single file, as a rotated set and by the tail check.
/// First byte odd: the next four bytes pick a position in a valid log + checkpoints, the byte
/// after them is XORed into it (0 counts as 1); the result must not verify.
pub fn audit_verify(data: &[u8]) {
    use crate::audit::verify::{inspect_tail, verify, verify_set};
    let key = audit_key();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let (log, more) = split_nul(rest);
        let (marks, current) = match more.map(split_nul) {
            Some((marks, current)) => (Some(marks), current),
            None => (None, None),
        };
        let _ = verify(key, log, marks);
        if let Some(current) = current {
            let _ = verify_set(key, &[("old", log), ("current", current)], marks);
        }
        let _ = inspect_tail(key, log);
        return;
    }
    let (log, marks) = valid_audit_log();
    assert!(
        verify(key, log, Some(marks)).is_ok(),
        "the reference log verifies"
    );
    let mut pos = [0u8; 4];
    for (slot, byte) in pos.iter_mut().zip(rest) {
        *slot = *byte;
    }
    let pos = u32::from_le_bytes(pos) as usize % (log.len() + marks.len());
    let mask = rest.get(4).copied().filter(|&m| m != 0).unwrap_or(1);
    let (mut log, mut marks) = (log.clone(), marks.clone());
    if pos < log.len() {
        log[pos] ^= mask;
    } else {
        let at = pos - log.len();
        marks[at] ^= mask;
        // The checkpoint file's final newline turned into other JSON whitespace changes no
        // authenticated field (the MAC covers seq, chain and at, not the line's layout), so
        // that one change may verify; anything else may not.
        if at + 1 == marks.len() && matches!(marks[at], b' ' | b'\t' | b'\r') {
            return;
        }
    }
    assert!(
        verify(key, &log, Some(&marks)).is_err(),
        "a log with byte {pos} flipped (^{mask:#04x}) verified"
    );
}

// ---------------------------------------------------------------------------------------------
// (5) approval canonicalisation

/// The same value with every object's keys in reverse order.
fn reversed(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .rev()
                .map(|(k, v)| (k.clone(), reversed(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(reversed).collect()),
        scalar => scalar.clone(),
    }
}

/// Target (5): strict JSON and approval canonicalisation.
///
/// The input is a request body (JSON or not); path arguments and flags are fixed.
pub fn approvals(data: &[u8]) {
    use crate::policy::approvals::{arguments_digest, canonical_arguments, canonical_json};
    let strict = crate::policy::strict_json::check(data);
    if let Ok(value) = serde_json::from_slice::<Value>(data) {
        let canonical = canonical_json(&value);
        assert_eq!(canonical, canonical_json(&reversed(&value)), "key order");
        let again: Value = serde_json::from_str(&canonical)
            .unwrap_or_else(|e| panic!("canonical JSON does not parse: {e}"));
        if strict.is_ok() {
            assert_eq!(canonical, canonical_json(&again), "not a fixed point");
        }
    }
    let flags = BTreeMap::from([
        ("to".to_owned(), "alice".to_owned()),
        ("amount".to_owned(), "10".to_owned()),
    ]);
    let path_args = ["acct-1".to_owned()];
    let arguments = canonical_arguments(&path_args, &flags, Some(data));
    let digest = arguments_digest(&arguments);
    assert_eq!(digest, arguments_digest(&reversed(&arguments)));
    assert_eq!(digest.len(), 64);
}

// ---------------------------------------------------------------------------------------------
// (6) server variables and upstream URLs

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct CallArgs {
    #[serde(default)]
    path_args: Vec<String>,
    #[serde(default)]
    flags: BTreeMap<String, String>,
    #[serde(default)]
    remote: bool,
}

/// Target (6): server-variable resolution and upstream URL building.
///
/// The input is an OpenAPI document; after a NUL come the caller's arguments as JSON
/// (`{"pathArgs": [..], "flags": {..}, "remote": bool}`), used for every tool.
pub fn url_build(data: &[u8]) {
    use crate::upstream::{build_request, AppliedCredentials, ExecuteArgs};
    let (doc, args) = split_nul(data);
    let args: CallArgs = args
        .and_then(|a| serde_json::from_slice(a).ok())
        .unwrap_or_default();
    let Ok(doc) = crate::catalog::openapi::parse(doc) else {
        return;
    };
    if let Some(servers) = doc.root.get("servers") {
        if let Ok(servers) =
            serde_json::from_value::<Vec<crate::catalog::openapi::Server>>(servers.clone())
        {
            let _ = crate::catalog::servers::resolve(&servers, Some(spec_url()));
            let _ = crate::catalog::servers::document_servers(&servers, None);
        }
    }
    let spec = args.remote.then(spec_url);
    let Ok(tools) = crate::catalog::normalize::normalize(&doc, "fuzz", spec) else {
        return;
    };
    let creds = AppliedCredentials::default();
    for tool in tools.tools.iter().take(16) {
        let n = tool.path_params.len();
        let mut path_args = args.path_args.clone();
        path_args.resize(n, "x".to_owned());
        let fuzzed = ExecuteArgs {
            path_args: path_args.clone(),
            flags: BTreeMap::new(),
            body: None,
        };
        let benign = ExecuteArgs {
            path_args: vec!["a".to_owned(); n],
            flags: BTreeMap::new(),
            body: None,
        };
        let with_flags = ExecuteArgs {
            path_args,
            flags: args.flags.clone(),
            body: None,
        };
        let _ = build_request(tool, &with_flags, &creds);
        let (Ok(fuzzed), Ok(benign)) = (
            build_request(tool, &fuzzed, &creds),
            build_request(tool, &benign, &creds),
        ) else {
            continue;
        };
        if let (Some(a), Some(b)) = (fuzzed.url(), benign.url()) {
            assert_eq!(a.scheme(), b.scheme(), "{a} vs {b}");
            assert_eq!(a.host_str(), b.host_str(), "{a} vs {b}");
            assert_eq!(a.port(), b.port(), "{a} vs {b}");
            // Arguments after a literal `?` or `#` in the document's own server URL or path
            // template land there: the document chose that, not the caller.
            let base = tool.servers.first().map(String::as_str).unwrap_or("");
            let literal = |c: char| tool.path.contains(c) || base.contains(c);
            if !literal('#') {
                assert_eq!(a.fragment(), b.fragment(), "{a} vs {b}");
                if !literal('?') {
                    assert_eq!(a.query(), b.query(), "{a} vs {b}");
                }
            }
            assert_eq!(
                a.path().matches('/').count(),
                b.path().matches('/').count(),
                "{a} vs {b}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// (7) MCP door messages

/// The fixed tool whose arguments fuzzed `tools/call` requests are decoded for.
fn mcp_tool_table() -> &'static crate::server::mcp_door::tools::ToolTable {
    use crate::catalog::{Catalog, ContentType, ParamLocation, Parameter, RequestBody, Tool};
    static TABLE: OnceLock<crate::server::mcp_door::tools::ToolTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let param = |name: &str, location| Parameter {
            name: name.into(),
            original_name: name.into(),
            location,
            required: location == ParamLocation::Path,
        };
        let tool = Tool {
            id: "svc:update".into(),
            service_id: "svc".into(),
            method: "PUT".into(),
            path: "/a/{a}/b/{b}".into(),
            path_params: vec![
                param("a", ParamLocation::Path),
                param("b", ParamLocation::Path),
            ],
            flags: vec![
                param("q", ParamLocation::Query),
                param("body", ParamLocation::Header),
            ],
            request_body: Some(RequestBody {
                required: false,
                content_types: vec![ContentType {
                    media_type: "application/json".into(),
                    schema: None,
                }],
            }),
            ..Tool::default()
        };
        crate::server::mcp_door::tools::ToolTable::build(
            &Catalog {
                tools: vec![tool],
                ..Catalog::default()
            },
            &Default::default(),
        )
    })
}

/// Target (7): the MCP door's message rules.
///
/// The input is a POST body; after a NUL come the routing headers, one per line:
/// `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`.
pub fn mcp_message(data: &[u8]) {
    use crate::server::mcp_door::{jsonrpc, revision, tools};
    const CODES: [i64; 8] = [
        jsonrpc::PARSE_ERROR,
        jsonrpc::INVALID_REQUEST,
        jsonrpc::METHOD_NOT_FOUND,
        jsonrpc::INVALID_PARAMS,
        jsonrpc::INTERNAL_ERROR,
        jsonrpc::SESSION_NOT_FOUND,
        jsonrpc::HEADER_MISMATCH,
        jsonrpc::UNSUPPORTED_PROTOCOL_VERSION,
    ];
    let (body, headers) = split_nul(data);
    let (id, method, params) = match jsonrpc::parse(body) {
        Err(error) => {
            assert!(CODES.contains(&error.code), "code {}", error.code);
            assert_eq!(error.to_json()["jsonrpc"], "2.0");
            return;
        }
        Ok(jsonrpc::Message::Request { id, method, params }) => (id, method, params),
        Ok(_) => return,
    };
    assert!(id.is_string() || id.is_i64() || id.is_u64(), "id {id}");
    let text = headers.map(String::from_utf8_lossy).unwrap_or_default();
    let mut lines = text.split('\n');
    let routing = revision::RoutingHeaders {
        protocol_version: lines.next(),
        method: lines.next(),
        name: lines.next(),
        unreadable: None,
    };
    if let Err(error) = revision::check_stateless(&id, &method, &params, &routing) {
        assert!(CODES.contains(&error.code), "code {}", error.code);
        assert_eq!(error.id, id);
    }
    let name = tools::mcp_name(&method);
    assert!(
        !name.is_empty()
            && name.len() <= tools::MAX_NAME_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)),
        "name {name:?}"
    );
    assert_eq!(name, tools::mcp_name(&method), "not a function of the id");
    if let Some(Value::Object(arguments)) = params.get("arguments") {
        let entry = mcp_tool_table().get("svc.update");
        if let Some(Ok(decoded)) = entry.map(|e| e.arguments(arguments.clone())) {
            assert_eq!(decoded.path_args.len(), 2, "path arguments");
        }
    }
}
