//! Semantic rules on the merged config: each test proves one rule family.

use std::path::Path;

use portcullis::app::load;
use portcullis::config::ScopePaths;

/// Load `body` as the only scope and return `path: message` lines (empty when valid).
fn problems(body: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join(".cli.json");
    std::fs::write(&project, body).unwrap();
    let paths = ScopePaths {
        project,
        ..ScopePaths::default()
    };
    match load(&paths) {
        Ok(_) => Vec::new(),
        Err(e) => e
            .diagnostics
            .iter()
            .map(|d| format!("{}: {}", d.path, d.message))
            .collect(),
    }
}

/// A valid config with `extra` merged in at the top level.
fn with(extra: &str) -> String {
    let base = r#""cli":"1.0.0","mode":{"default":"discover"},"runtime":{"mode":"remote"}"#;
    if extra.is_empty() {
        format!("{{{base}}}")
    } else {
        format!("{{{base},{extra}}}")
    }
}

fn has(found: &[String], expected: &str) {
    assert!(
        found.iter().any(|f| f == expected),
        "expected {expected:?} in {found:#?}"
    );
}

#[test]
fn the_minimal_runtime_only_config_is_valid() {
    assert_eq!(problems(&with("")), Vec::<String>::new());
}

#[test]
fn cli_mode_and_some_content_are_required() {
    let found = problems(r#"{"cli":""}"#);
    has(&found, "cli: must not be empty");
    has(&found, "mode.default: is required");
    has(
        &found,
        "$: must configure at least one of sources, mcpServers or runtime",
    );
}

#[test]
fn runtime_mode_must_be_remote_and_local_is_refused() {
    let found = problems(
        r#"{"cli":"1","mode":{"default":"discover"},"runtime":{"mode":"embedded","local":{}}}"#,
    );
    has(&found, "runtime.mode: must be remote");
    has(
        &found,
        "runtime.local: is no longer supported; configure a remote runtime instead",
    );
}

#[test]
fn runtime_auth_needs_a_known_profile_and_an_audience() {
    let found = problems(&with(r#""sources":{},"policy":{}"#).replace(
        r#""runtime":{"mode":"remote"}"#,
        r#""runtime":{"mode":"remote","server":{"auth":{"validationProfile":"magic"},"upstream":{"timeoutMs":0}}}"#,
    ));
    // Reported by the schema (generated from authn::ServerAuth) with the accepted values.
    assert!(
        found.iter().any(|f| f
            .starts_with("runtime.server.auth.validationProfile: must be one of")
            && f.contains("oidc_jwks")
            && f.contains("oauth2_introspection")),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .any(|f| f.contains("runtime.server.auth.audience")),
        "{found:#?}"
    );
    has(
        &found,
        "runtime.server.upstream.timeoutMs: must be greater than 0",
    );

    let legacy = with("").replace(
        r#""runtime":{"mode":"remote"}"#,
        r#""runtime":{"server":{"auth":{"mode":"oidcJWKS","audience":"a"}}}"#,
    );
    has(&problems(&legacy), "runtime.server.auth.mode: legacy mode must be oauth2Introspection; use validationProfile instead");
}

#[test]
fn services_must_reference_existing_sources() {
    let found = problems(&with(r#""services":{"a":{"source":"nope"},"b":{}}"#));
    has(
        &found,
        r#"services.a.source: references unknown source "nope""#,
    );
    has(&found, "services.b.source: is required");
}

#[test]
fn source_fields_follow_the_source_type() {
    let found = problems(&with(
        r#""sources":{
            "api":{"type":"openapi","transport":{"type":"stdio","command":"x"},"disabledTools":[],"oauth":{}},
            "m":{"type":"mcp","uri":"./x"}}"#,
    ));
    has(&found, "sources.api.uri: is required");
    has(
        &found,
        "sources.api.transport: is only allowed for mcp sources",
    );
    has(
        &found,
        "sources.api.disabledTools: is only allowed for mcp sources",
    );
    has(&found, "sources.api.oauth: is only allowed for mcp sources");
    has(&found, "sources.m.uri: is not allowed for mcp sources");
    has(&found, "sources.m.transport: is required for mcp sources");
}

#[test]
fn a_tool_name_prefix_is_mcp_only_and_stays_a_valid_mcp_name() {
    let stdio = r#""transport":{"type":"stdio","command":"x"}"#;
    let found = problems(&with(&format!(
        r#""sources":{{
            "api":{{"type":"openapi","uri":"./a.json","toolNamePrefix":"api_"}},
            "bad":{{"type":"mcp",{stdio},"toolNamePrefix":"fs:"}},
            "long":{{"type":"mcp",{stdio},"toolNamePrefix":"{long}"}},
            "bare":{{"type":"mcp",{stdio},"toolNamePrefix":""}},
            "named":{{"type":"mcp",{stdio},"toolNamePrefix":"files.v2-_"}}}}"#,
        long = "x".repeat(65)
    )));
    has(
        &found,
        "sources.api.toolNamePrefix: is only allowed for mcp sources",
    );
    let rule =
        "must be at most 64 characters of A-Z a-z 0-9 _ . - (MCP tool names allow no others)";
    has(&found, &format!("sources.bad.toolNamePrefix: {rule}"));
    has(&found, &format!("sources.long.toolNamePrefix: {rule}"));
    assert!(
        !found
            .iter()
            .any(|f| f.starts_with("sources.bare") || f.starts_with("sources.named")),
        "an empty prefix and one of allowed characters are valid: {found:#?}"
    );
}

#[test]
fn mcp_transport_rules_require_and_forbid_per_type() {
    let found = problems(&with(
        r#""mcpServers":{
            "a":{"type":"stdio","url":"https://x","headers":{"X":"1"}},
            "b":{"type":"sse","command":"x","args":[],"oauth":{"mode":"clientCredentials"}},
            "c":{"type":"streamable-http","url":"https://x","env":{"A":"1"}}}"#,
    ));
    has(
        &found,
        "sources.a.transport.command: is required for stdio transport",
    );
    has(
        &found,
        "sources.a.transport.url: is not allowed for stdio transport",
    );
    has(
        &found,
        "sources.a.transport.headers: is not allowed for stdio transport",
    );
    has(
        &found,
        "sources.b.transport.url: is required for sse transport",
    );
    has(
        &found,
        "sources.b.transport.command: is not allowed for sse transport",
    );
    has(
        &found,
        "sources.b.transport.args: is not allowed for sse transport",
    );
    has(&found, "sources.b.oauth: is not allowed for sse transport");
    has(
        &found,
        "sources.c.transport.env: is not allowed for streamable-http transport",
    );
}

#[test]
fn mcp_oauth_owns_authorization_and_headers_may_not_overlap() {
    let found = problems(&with(
        r#""mcpServers":{"h":{"type":"streamable-http","url":"https://x",
            "headers":{"authorization":"x","X-Key":"1"},"headerSecrets":{"x-key":"k"},
            "oauth":{"mode":"authorizationCode","interactive":true}}}"#,
    ));
    has(
        &found,
        "sources.h.transport.headers.authorization: is owned by oauth and cannot be set explicitly",
    );
    has(
        &found,
        "sources.h.transport.headerSecrets.x-key: duplicates transport.headers.X-Key",
    );
    has(
        &found,
        "sources.h.oauth.mode: must be clientCredentials for mcp transport oauth",
    );
    has(
        &found,
        "sources.h.oauth.clientId: is required for mcp transport oauth",
    );
    has(
        &found,
        "sources.h.oauth.interactive: is not allowed for clientCredentials mcp transport oauth",
    );
}

#[test]
fn an_mcp_source_has_exactly_one_service_with_its_own_key() {
    let found = problems(&with(
        r#""mcpServers":{"fs":{"command":"npx"}},"services":{"other":{"source":"fs"}}"#,
    ));
    has(
        &found,
        "services.other.source: is a second service pointing at mcp source fs",
    );
    let found = problems(&with(
        r#""sources":{"fs":{"type":"mcp","transport":{"type":"stdio","command":"x"}},
                      "api":{"type":"openapi","uri":"x"}},
            "services":{"fs":{"source":"api"}}"#,
    ));
    has(
        &found,
        r#"services.fs.source: must reference "fs" for mcp source"#,
    );
}

#[test]
fn agent_profiles_reference_existing_tool_sets_and_profiles() {
    let found = problems(&with(
        r#""curation":{"toolSets":{"ok":{"allow":["a:*"]}}},
            "agents":{"profiles":{"p":{"toolSet":"missing"}},"defaultProfile":"q"}"#,
    ));
    has(
        &found,
        r#"agents.profiles.p.toolSet: references unknown tool set "missing" (define it in curation.toolSets)"#,
    );
    has(
        &found,
        r#"agents.defaultProfile: references unknown profile "q""#,
    );
}

#[test]
fn invalid_patterns_are_reported_at_their_path() {
    let found = problems(&with(
        r#""policy":{"deny":["ok:*","bad ***"],"approvalRequired":[""]},
            "curation":{"toolSets":{"s":{"allow":["x:***"],"deny":["**"]}}}"#,
    ));
    assert!(
        found
            .iter()
            .any(|f| f.starts_with("policy.deny[1]: invalid pattern")),
        "{found:#?}"
    );
    assert!(found
        .iter()
        .any(|f| f.starts_with("policy.approvalRequired[0]: invalid pattern")));
    assert!(found
        .iter()
        .any(|f| f.starts_with("curation.toolSets.s.allow[0]: invalid pattern")));
    assert_eq!(found.len(), 3, "{found:#?}");
}

#[test]
fn secrets_need_the_fields_of_their_type() {
    let found = problems(&with(
        r#""secrets":{
            "a":{"value":"x"},
            "b":{"type":"env"},
            "c":{"type":"exec","command":[]},
            "d":{"type":"plugin","value":"ref"},
            "e":{"type":"oauth2","mode":"implicit"},
            "f":{"type":"oauth2","mode":"password","clientId":{"type":"env","value":"ID"}},
            "g":{"type":"oauth2","clientId":{"type":"oauth2"}}}"#,
    ));
    has(&found, "secrets.a.type: is required");
    has(&found, "secrets.b.value: is required");
    has(&found, "secrets.c.command: must be a non-empty argv");
    has(&found, "secrets.d.plugin: is required for plugin secrets");
    has(&found, "secrets.e.mode: the OAuth 2.0 implicit flow is not supported; use clientCredentials or authorizationCode");
    has(&found, "secrets.e.clientId: is required for oauth2 secrets");
    has(&found, "secrets.f.mode: the OAuth 2.0 password flow is not supported; use clientCredentials or authorizationCode");
    has(
        &found,
        "secrets.g.mode: is required for oauth2 secrets (clientCredentials or authorizationCode)",
    );
    has(
        &found,
        "secrets.g.clientId.type: must be a static secret reference, not oauth2",
    );
}

#[test]
fn exec_secrets_are_refused_at_load_unless_the_policy_allows_them() {
    let secrets = r#""secrets":{
            "vault":{"type":"exec","command":["vault","read","-field=token","kv/x"]},
            "oauth":{"type":"oauth2","mode":"clientCredentials",
                     "clientId":{"type":"literal","value":"id"},
                     "clientSecret":{"type":"exec","value":"print-secret"}}}"#;
    let found = problems(&with(secrets));
    has(
        &found,
        "secrets.vault.type: exec secrets run a program and are refused unless policy.allowExecSecrets is true",
    );
    has(
        &found,
        "secrets.oauth.clientSecret.type: exec secrets run a program and are refused unless policy.allowExecSecrets is true",
    );
    for policy in [r#""policy":{"allowExecSecrets":false},"#, ""] {
        assert_eq!(problems(&with(&format!("{policy}{secrets}"))).len(), 2);
    }
    let allowed = format!(r#""policy":{{"allowExecSecrets":true}},{secrets}"#);
    assert!(problems(&with(&allowed)).is_empty());
}

#[test]
fn keychain_references_and_helper_timeouts_are_checked_at_load() {
    let found = problems(&with(
        r#""policy":{"allowExecSecrets":true},"secrets":{
            "ok":{"type":"osKeychain","value":"service=github account=ci","timeoutMs":2000},
            "legacy":{"type":"osKeychain","value":"github/ci"},
            "typo":{"type":"osKeychain","value":"service=github account"},
            "dup":{"type":"osKeychain","value":"service=a service=b"},
            "env":{"type":"env","value":"X","timeoutMs":10},
            "exec":{"type":"exec","command":["x"],"timeoutMs":10}}"#,
    ));
    has(&found, "secrets.typo.value: keychain reference \"service=github account\" is invalid: every word must be attribute=value");
    has(&found, "secrets.dup.value: keychain reference \"service=a service=b\" is invalid: an attribute is given twice");
    has(
        &found,
        "secrets.env.timeoutMs: applies to exec and osKeychain secrets only",
    );
    assert_eq!(found.len(), 3, "{found:#?}");
}

#[test]
fn oauth2_client_auth_method_and_token_storage_are_enums() {
    let found = problems(&with(
        r#""secrets":{"a":{"type":"oauth2","mode":"clientCredentials",
            "clientId":{"type":"env","value":"ID"},"clientSecret":{"type":"env","value":"S"},
            "clientAuthMethod":"private_key_jwt","tokenStorage":"disk"}}"#,
    ));
    has(
        &found,
        r#"secrets.a.clientAuthMethod: must be one of ["client_secret_basic","client_secret_post"]"#,
    );
    has(
        &found,
        r#"secrets.a.tokenStorage: must be one of ["instance","memory"]"#,
    );
}

#[test]
fn client_credentials_need_a_client_secret_but_a_public_code_client_does_not() {
    let found = problems(&with(
        r#""secrets":{
            "a":{"type":"oauth2","mode":"clientCredentials","clientId":{"type":"env","value":"ID"}},
            "b":{"type":"oauth2","mode":"authorizationCode","clientId":{"type":"env","value":"ID"},
                 "clientAuthMethod":"client_secret_post","tokenStorage":"memory"}}"#,
    ));
    has(
        &found,
        "secrets.a.clientSecret: is required for clientCredentials oauth2 secrets",
    );
    assert!(
        !found.iter().any(|f| f.starts_with("secrets.b")),
        "{found:#?}"
    );
}

#[test]
fn semantic_problems_name_the_scope_file_that_set_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let user = dir.path().join("user.json");
    std::fs::write(&user, r#"{"policy":{"deny":["bad ***"]}}"#).unwrap();
    let project = dir.path().join(".cli.json");
    std::fs::write(&project, with("")).unwrap();
    let paths = ScopePaths {
        user: Some(user.clone()),
        project,
        ..ScopePaths::default()
    };
    let e = load(&paths).unwrap_err();
    assert_eq!(
        e.diagnostics[0].file.as_deref(),
        Some(user.display().to_string().as_str())
    );
    assert!(Path::new(e.diagnostics[0].file.as_deref().unwrap()).exists());
}

#[test]
fn oauth_and_mcp_urls_must_be_https_except_on_loopback() {
    let found = problems(&with(
        r#""mcpServers":{"h":{"type":"streamable-http","url":"http://mcp.example/mcp",
            "oauth":{"mode":"clientCredentials","tokenURL":"http://as.example/token",
                     "issuer":"http://as.example","clientId":{"type":"env","value":"I"},
                     "clientSecret":{"type":"env","value":"S"}}},
           "ok":{"type":"streamable-http","url":"http://127.0.0.1:9/mcp"}},
        "secrets":{"o":{"type":"oauth2","mode":"clientCredentials",
            "tokenURL":"http://as.example/token","authorizationURL":"http://as.example/auth",
            "issuer":"http://as.example","clientId":{"type":"env","value":"I"},
            "clientSecret":{"type":"env","value":"S"}},
          "local":{"type":"oauth2","mode":"clientCredentials","tokenURL":"http://localhost:8080/token",
            "clientId":{"type":"env","value":"I"},"clientSecret":{"type":"env","value":"S"}}}"#,
    ));
    let rule = "must be https (plain http is accepted for loopback hosts only)";
    for path in [
        "sources.h.transport.url",
        "sources.h.oauth.tokenURL",
        "sources.h.oauth.issuer",
        "secrets.o.tokenURL",
        "secrets.o.authorizationURL",
        "secrets.o.issuer",
    ] {
        has(&found, &format!("{path}: {rule}"));
    }
    assert_eq!(found.len(), 6, "loopback URLs are accepted: {found:#?}");
}

#[test]
fn redirect_allow_origins_must_be_bare_http_origins() {
    let found = problems(&with(
        r#""sources":{"a":{"type":"openapi","uri":"a.json",
            "redirects":{"allowOrigins":["https://cdn.example","https://cdn.example/path","ftp://x"]}},
           "m":{"type":"mcp","transport":{"type":"stdio","command":"x"},
            "redirects":{"allowOrigins":[]}}},
        "services":{"a":{"source":"a"},"m":{"source":"m"}}"#,
    ));
    assert!(
        found
            .iter()
            .any(|f| f.starts_with("sources.a.redirects.allowOrigins[1]: ")),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .any(|f| f.starts_with("sources.a.redirects.allowOrigins[2]: ")),
        "{found:#?}"
    );
    has(
        &found,
        "sources.m.redirects: is not allowed for mcp sources",
    );
    assert!(
        !found.iter().any(|f| f.contains("allowOrigins[0]")),
        "{found:#?}"
    );
}
