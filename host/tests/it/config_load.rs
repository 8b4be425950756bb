//! Loading, per-scope schema diagnostics, merge rules and the published schema.

use std::path::{Path, PathBuf};

use portcullis::app::{check, load};
use portcullis::config::{self, schema, ConfigError, ScopePaths};

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).expect("write fixture");
    path
}

/// Scope paths inside `dir` only; never the real /etc or ~/.config.
fn paths(dir: &Path) -> ScopePaths {
    ScopePaths {
        managed: Some(dir.join("managed.json")),
        user: Some(dir.join("user.json")),
        project: dir.join(".cli.json"),
        local: Some(dir.join(".cli.local.json")),
    }
}

fn err(paths: &ScopePaths) -> ConfigError {
    load(paths).expect_err("config should be refused")
}

const MINIMAL: &str = r#"{"cli":"1.0.0","mode":{"default":"discover"},
  "sources":{"s":{"type":"openapi","uri":"./s.json"}},"services":{"svc":{"source":"s"}}}"#;

#[test]
fn unknown_fields_and_type_errors_are_all_reported_with_file_and_path() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "user.json",
        r#"{"policy":{"deny":["a:*"],"denyy":[]}}"#,
    );
    let project = write(
        dir.path(),
        ".cli.json",
        r#"{"cli":"1.0.0","bogus":1,"mode":{"default":"curated"},
            "sources":{"tickets":{"type":"openapi","uri":42,"extra":true}}}"#,
    );
    let e = err(&paths(dir.path()));
    let found: Vec<(String, String)> = e
        .diagnostics
        .iter()
        .map(|d| (d.file.clone().unwrap_or_default(), d.path.clone()))
        .collect();
    let user = dir.path().join("user.json").display().to_string();
    let project = project.display().to_string();
    for expected in [
        (user.clone(), "policy.denyy".to_owned()),
        (project.clone(), "bogus".to_owned()),
        (project.clone(), "sources.tickets.extra".to_owned()),
        (project.clone(), "sources.tickets.uri".to_owned()),
    ] {
        assert!(
            found.contains(&expected),
            "missing {expected:?} in {found:?}"
        );
    }
    let text = e.to_string();
    assert!(
        text.starts_with("configuration validation failed; "),
        "{text}"
    );
    assert!(
        text.contains("sources.tickets.uri: must be of type string"),
        "{text}"
    );
    assert!(text.contains("bogus: unknown field"), "{text}");
}

#[test]
fn json_syntax_error_reports_line_and_column_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let project = write(
        dir.path(),
        ".cli.json",
        "{\n  \"cli\": \"1.0.0\",\n  \"mode\" {}\n}",
    );
    let e = err(&paths(dir.path()));
    assert_eq!(e.diagnostics.len(), 1);
    let d = &e.diagnostics[0];
    assert_eq!(
        d.file.as_deref(),
        Some(project.display().to_string().as_str())
    );
    assert_eq!(d.path, "$");
    assert!(d.message.contains("line 3, column 10"), "{}", d.message);
}

#[test]
fn missing_project_file_is_an_error_naming_it_but_other_scopes_are_optional() {
    let dir = tempfile::tempdir().unwrap();
    let e = err(&paths(dir.path()));
    assert_eq!(e.diagnostics.len(), 1);
    let file = e.diagnostics[0].file.clone().unwrap();
    assert!(file.ends_with(".cli.json"), "{file}");
    assert!(e.diagnostics[0].message.contains("not found"));

    write(dir.path(), ".cli.json", MINIMAL);
    let loaded = load(&paths(dir.path())).unwrap();
    assert_eq!(loaded.files, vec![dir.path().join(".cli.json")]);
    assert_eq!(loaded.base_dir, dir.path());
}

#[test]
fn four_scope_merge_follows_the_contract_rules() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "managed.json",
        r#"{"sources":{"s":{"type":"openapi","uri":"./s.json","enabled":true}},
            "policy":{"deny":["admin:**","shared:*"]}}"#,
    );
    write(
        dir.path(),
        "user.json",
        r#"{"sources":{"s":{"enabled":false}},"policy":{"deny":["shared:*","user:*"]},
            "services":{"svc":{"source":"s","overlays":["a.yaml","b.yaml"]}},
            "secrets":{"k":{"type":"oauth2","mode":"clientCredentials",
                            "clientId":{"type":"env","value":"ID"},"scopes":["a"]}}}"#,
    );
    write(
        dir.path(),
        ".cli.json",
        r#"{"cli":"1.0.0","mode":{"default":"discover"},
            "policy":{"deny":["project:*"],"approvalRequired":["svc:create*"],"allowExecSecrets":true},
            "services":{"svc":{"overlays":["c.yaml"]}},
            "secrets":{"k":{"type":"env","value":"TOKEN"}}}"#,
    );
    let local = write(
        dir.path(),
        ".cli.local.json",
        r#"{"sources":{"s":{"enabled":true}},"policy":{"allowExecSecrets":false}}"#,
    );
    let loaded = load(&paths(dir.path())).expect("merged config is valid");
    let c = &loaded.config;
    let source = &c.sources.as_ref().unwrap()["s"];
    assert_eq!(source.enabled, Some(true), "managed on, user off, local on");
    assert_eq!(source.uri.as_deref(), Some("./s.json"));
    let policy = c.policy.as_ref().unwrap();
    assert_eq!(
        policy.deny.as_deref().unwrap(),
        ["admin:**", "shared:*", "user:*", "project:*"]
    );
    assert_eq!(policy.managed_deny, ["admin:**", "shared:*"]);
    assert_eq!(policy.allow_exec_secrets, Some(false));
    let secret = &c.secrets.as_ref().unwrap()["k"];
    assert_eq!(secret.kind, Some(config::SecretType::Env));
    assert!(
        secret.scopes.is_none() && secret.client_id.is_none(),
        "replaced whole"
    );
    let service = &c.services.as_ref().unwrap()["svc"];
    assert_eq!(service.overlays.as_deref().unwrap(), ["c.yaml"]);
    assert_eq!(service.source.as_deref(), Some("s"));
    assert_eq!(loaded.files.len(), 4);
    assert_eq!(loaded.base_dir, local.parent().unwrap());
}

#[test]
fn type_change_clears_fields_of_the_other_kind_and_refresh_is_replaced_whole() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "user.json",
        r#"{"sources":{"x":{"type":"openapi","uri":"./x.json","refresh":{"maxAgeSeconds":5,"manualOnly":true}}}}"#,
    );
    write(
        dir.path(),
        ".cli.json",
        r#"{"cli":"1","mode":{"default":"discover"},
            "sources":{"x":{"refresh":{"maxAgeSeconds":9}},
                       "m":{"type":"openapi","uri":"./m.json"}}}"#,
    );
    write(
        dir.path(),
        ".cli.local.json",
        r#"{"sources":{"m":{"type":"mcp","transport":{"type":"stdio","command":"srv"}}}}"#,
    );
    let c = load(&paths(dir.path())).expect("valid").config;
    let sources = c.sources.unwrap();
    let refresh = sources["x"].refresh.clone().unwrap();
    assert_eq!(
        (refresh.max_age_seconds, refresh.manual_only),
        (Some(9), None)
    );
    assert!(sources["m"].uri.is_none(), "type mcp clears uri");
    assert_eq!(
        c.services.unwrap()["m"].source.as_deref(),
        Some("m"),
        "mcp service auto-created"
    );
}

#[test]
fn later_validation_profile_wins_over_earlier_legacy_auth_mode() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "user.json",
        r#"{"runtime":{"server":{"auth":{"mode":"oauth2Introspection","introspectionURL":"https://i","audience":"a"}}}}"#,
    );
    write(
        dir.path(),
        ".cli.json",
        r#"{"cli":"1","mode":{"default":"discover"},"runtime":{"mode":"remote","server":{"auth":
            {"validationProfile":"oidc_jwks","issuer":"https://i","jwksURL":"https://i/jwks"}}}}"#,
    );
    let c = load(&paths(dir.path())).expect("valid").config;
    let auth = c.runtime.unwrap().server.unwrap().auth.unwrap();
    assert_eq!(auth["validationProfile"], "oidc_jwks");
    assert!(auth.get("mode").is_none());
}

#[test]
fn mcp_servers_are_normalized_and_ambiguity_across_scopes_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "user.json",
        r#"{"mcpServers":{"fs":{"command":"npx"}}}"#,
    );
    write(
        dir.path(),
        ".cli.json",
        r#"{"cli":"1","mode":{"default":"discover"},"sources":{"fs":{"type":"openapi","uri":"x"}}}"#,
    );
    let e = err(&paths(dir.path()));
    assert_eq!(e.diagnostics[0].path, "sources.fs");
    assert!(e.diagnostics[0]
        .message
        .starts_with("is ambiguous with mcpServers.fs"));

    write(
        dir.path(),
        ".cli.json",
        r#"{"cli":"1","mode":{"default":"discover"}}"#,
    );
    let c = load(&paths(dir.path())).expect("valid").config;
    let source = &c.sources.as_ref().unwrap()["fs"];
    assert_eq!(source.kind, Some(config::SourceType::Mcp));
    assert_eq!(
        source.transport.as_ref().unwrap().kind.as_deref(),
        Some("stdio")
    );
    assert_eq!(c.services.unwrap()["fs"].source.as_deref(), Some("fs"));
    assert!(c.mcp_servers.is_none());
}

#[test]
fn project_path_is_absolute_and_lexically_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    write(dir.path(), ".cli.json", MINIMAL);
    let mut p = paths(dir.path());
    p.project = dir.path().join("sub/.././.cli.json");
    let loaded = load(&p).unwrap();
    assert_eq!(loaded.project_path, dir.path().join(".cli.json"));
}

#[test]
fn discovery_uses_env_overrides_then_xdg_then_home() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| PathBuf::from(v))
        }
    };
    let p = ScopePaths::discover_with(
        PathBuf::from("/w/proj/./.cli.json"),
        env(&[
            ("PORTCULLIS_MANAGED_CONFIG", "/m.json"),
            ("PORTCULLIS_USER_CONFIG", "/u.json"),
        ]),
    );
    assert_eq!(p.managed, Some(PathBuf::from("/m.json")));
    assert_eq!(p.user, Some(PathBuf::from("/u.json")));
    assert_eq!(p.project, PathBuf::from("/w/proj/.cli.json"));
    assert_eq!(p.local, Some(PathBuf::from("/w/proj/.cli.local.json")));
    let p = ScopePaths::discover_with(
        PathBuf::from("/p/.cli.json"),
        env(&[("XDG_CONFIG_HOME", "/x")]),
    );
    assert_eq!(p.managed, Some(PathBuf::from("/etc/open-cli/.cli.json")));
    assert_eq!(p.user, Some(PathBuf::from("/x/open-cli/.cli.json")));
    let p = ScopePaths::discover_with(PathBuf::from("/p/.cli.json"), env(&[("HOME", "/h")]));
    assert_eq!(p.user, Some(PathBuf::from("/h/.config/open-cli/.cli.json")));
}

#[test]
fn documented_example_config_loads() {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/example.cli.json");
    let loaded = load(&ScopePaths {
        project: fixture,
        ..ScopePaths::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let services = loaded.config.services.unwrap();
    assert_eq!(services["filesystem"].source.as_deref(), Some("filesystem"));
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md"),
    )
    .unwrap();
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/example.cli.json"),
    )
    .unwrap();
    assert!(
        doc.contains(example.trim()),
        "docs/configuration.md must embed the example fixture verbatim"
    );
}

#[test]
fn check_reports_one_line_per_problem_and_keeps_warnings_apart() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        ".cli.json",
        r#"{"cli":"1","mode":{"default":"discover"},"runtime":{"mode":"remote"},
            "policy":{"allowExecSecrets":true},
            "secrets":{"tool":{"type":"exec","command":["/nonexistent/pass","show","x"]}}}"#,
    );
    let report = check(&paths(dir.path()));
    assert!(report.ok(), "{report}");
    assert_eq!(report.warnings.len(), 1);
    assert!(report.to_string().contains("warning: "), "{report}");

    write(
        dir.path(),
        ".cli.json",
        r#"{"cli":"","runtime":{"mode":"embedded"}}"#,
    );
    let report = check(&paths(dir.path()));
    assert!(!report.ok());
    let text = report.to_string();
    let file = dir.path().join(".cli.json").display().to_string();
    assert!(
        text.contains(&format!("{file}: runtime.mode: must be remote")),
        "{text}"
    );
    assert!(
        text.contains(&format!("{file}: mode.default: is required")),
        "{text}"
    );
}

#[test]
fn published_schema_matches_the_loader() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/config.schema.json");
    let expected = schema::published_schema_text();
    if std::env::var_os("PORTCULLIS_WRITE_SCHEMA").is_some() {
        std::fs::write(&path, &expected).unwrap();
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "docs/config.schema.json is out of date; regenerate it with:\n  \
         PORTCULLIS_WRITE_SCHEMA=1 cargo test -p portcullis published_schema"
    );
}
