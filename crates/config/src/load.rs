//! Scope discovery and loading.
//!
//! Rule: scopes are read managed -> user -> project -> local. A missing managed, user or local
//! file is skipped; a missing project file is an error naming it. Each file is parsed as JSON
//! (no comments, no YAML), checked against the relaxed schema ([`super::schema`]), decoded,
//! its `mcpServers` normalized into `sources` + `services`, then merged ([`super::merge`]).
//! The merged config is checked by [`super::validate::document`] and then by the capability
//! rules the caller passes in ([`Rules`]; the application composes them in its `app` module).
//!
//! Failure mode: every problem in every scope is collected before anything is refused; when a
//! scope cannot be read, parsed or fails the schema, the checks on the merged config are skipped
//! (their findings would be noise). Patterns and ambiguities are reported in any case.
//! Each diagnostic names the file it was found in; a problem in the merged config is attributed
//! to the highest-precedence scope that sets the offending key.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use super::merge::{merge, Scope};
use super::model::{Config, McpTransport, Source, SourceType};
use super::path::{JsonPath, Segment};
use super::validate::{document, ConfigError, Diagnostic, Rules};

/// Default managed config path.
pub const DEFAULT_MANAGED: &str = "/etc/open-cli/.cli.json";
/// Environment variable overriding the managed config path.
pub const MANAGED_ENV: &str = "PORTCULLIS_MANAGED_CONFIG";
/// Environment variable overriding the user config path.
pub const USER_ENV: &str = "PORTCULLIS_USER_CONFIG";

/// The four config scopes, in precedence order (later wins).
#[derive(Debug, Clone, Default)]
pub struct ScopePaths {
    /// Organisation-managed config (default `/etc/open-cli/.cli.json`).
    pub managed: Option<PathBuf>,
    /// Per-user config (default `$XDG_CONFIG_HOME/open-cli/.cli.json`).
    pub user: Option<PathBuf>,
    /// The project config given with `--config`.
    pub project: PathBuf,
    /// `.cli.local.json` beside the project config.
    pub local: Option<PathBuf>,
}

impl ScopePaths {
    /// Default scope paths around `project`, honouring `PORTCULLIS_MANAGED_CONFIG`,
    /// `PORTCULLIS_USER_CONFIG`, `XDG_CONFIG_HOME` and `HOME`.
    pub fn discover(project: PathBuf) -> Self {
        Self::discover_with(project, |name| std::env::var_os(name).map(PathBuf::from))
    }

    /// [`ScopePaths::discover`] with an explicit environment lookup (empty values count as unset).
    pub fn discover_with(project: PathBuf, env: impl Fn(&str) -> Option<PathBuf>) -> Self {
        let env = |name: &str| env(name).filter(|v| !v.as_os_str().is_empty());
        let managed = env(MANAGED_ENV).unwrap_or_else(|| PathBuf::from(DEFAULT_MANAGED));
        let user = env(USER_ENV).or_else(|| {
            let config_home =
                env("XDG_CONFIG_HOME").or_else(|| env("HOME").map(|h| h.join(".config")))?;
            Some(config_home.join("open-cli").join(".cli.json"))
        });
        let project = absolute_clean(&project);
        let local = project.parent().map(|dir| dir.join(".cli.local.json"));
        Self {
            managed: Some(managed),
            user,
            project,
            local,
        }
    }

    fn in_order(&self) -> Vec<(Scope, &Path)> {
        let mut out = Vec::new();
        if let Some(p) = &self.managed {
            out.push((Scope::Managed, p.as_path()));
        }
        if let Some(p) = &self.user {
            out.push((Scope::User, p.as_path()));
        }
        out.push((Scope::Project, self.project.as_path()));
        if let Some(p) = &self.local {
            out.push((Scope::Local, p.as_path()));
        }
        out
    }
}

/// `path` made absolute against the working directory and cleaned lexically (`.` dropped,
/// `..` folded); symlinks are not resolved.
pub fn absolute_clean(path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(path)
    };
    let mut out = PathBuf::new();
    for component in joined.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if out.parent().is_some() {
                    out.pop();
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// A merged, validated config and where it came from.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The effective config.
    pub config: Config,
    /// Directory that relative references resolve against.
    pub base_dir: PathBuf,
    /// Absolute, cleaned path of the project config (the config binding key).
    pub project_path: PathBuf,
    /// Scope files that existed and were read (watched for changes).
    pub files: Vec<PathBuf>,
}

/// One scope document that was read.
struct ScopeDoc {
    scope: Scope,
    file: PathBuf,
    raw: Value,
}

/// Load, merge and validate every scope: the schema and `rules.scope` on each file, then the
/// document's own rules and `rules.merged` on the merged config.
pub fn load(paths: &ScopePaths, rules: &dyn Rules) -> Result<LoadedConfig, ConfigError> {
    let mut diagnostics = Vec::new();
    let mut docs = Vec::new();
    let mut merged = Config::default();
    // Names seen so far under `sources` and under `mcpServers`, for the ambiguity rule.
    let mut seen_sources: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut seen_servers: BTreeMap<String, PathBuf> = BTreeMap::new();
    let project_path = absolute_clean(&paths.project);
    // A scope that could not be read, parsed or decoded makes the merged config meaningless.
    let mut unreadable = false;
    // The managed scope as written: later scopes may only make it stricter.
    let mut managed: Option<Config> = None;

    for (scope, file) in paths.in_order() {
        let file_name = file.display().to_string();
        let diag = |path: String, message: String| Diagnostic {
            file: Some(file_name.clone()),
            path,
            message,
        };
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && scope != Scope::Project => {
                continue
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                diagnostics.push(diag("$".into(), "project config file not found".into()));
                unreadable = true;
                continue;
            }
            Err(e) => {
                diagnostics.push(diag("$".into(), format!("cannot read config file: {e}")));
                unreadable = true;
                continue;
            }
        };
        let raw: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                let message = format!(
                    "invalid JSON at line {}, column {}: {}",
                    e.line(),
                    e.column(),
                    syntax_reason(&e)
                );
                diagnostics.push(diag("$".into(), message));
                unreadable = true;
                continue;
            }
        };
        let problems = super::schema::scope_problems(&raw);
        let schema_failed = !problems.is_empty();
        let patterns = rules.scope(&raw).0;
        let all = problems.into_iter().chain(patterns);
        diagnostics.extend(all.map(|(p, m)| diag(p.to_string(), m)));
        if schema_failed {
            unreadable = true;
            continue;
        }
        let mut config: Config = match serde_path_to_error::deserialize(&raw) {
            Ok(c) => c,
            Err(e) => {
                let path = match e.path().to_string() {
                    p if p == "." => "$".to_owned(),
                    p => p,
                };
                diagnostics.push(diag(path, e.inner().to_string()));
                unreadable = true;
                continue;
            }
        };
        for name in config.sources.iter().flatten().map(|(k, _)| k) {
            if let Some(other) = seen_servers.get(name) {
                let msg = format!("is ambiguous with mcpServers.{name} in {}", other.display());
                diagnostics.push(diag(JsonPath::of(&["sources", name]).to_string(), msg));
            }
            seen_sources.insert(name.clone(), file.to_path_buf());
        }
        for name in config.mcp_servers.iter().flatten().map(|(k, _)| k) {
            if let Some(other) = seen_sources.get(name) {
                let msg = format!("is ambiguous with sources.{name} in {}", other.display());
                diagnostics.push(diag(JsonPath::of(&["mcpServers", name]).to_string(), msg));
            }
            seen_servers.insert(name.clone(), file.to_path_buf());
        }
        normalize_mcp(&mut config);
        match (&managed, scope) {
            (None, Scope::Managed) => managed = Some(config.clone()),
            (Some(settled), _) => {
                let attempts = super::managed::overrides(settled, &config);
                diagnostics.extend(attempts.into_iter().map(|(p, m)| diag(p.to_string(), m)));
            }
            (None, _) => {}
        }
        merge(&mut merged, config, scope);
        docs.push(ScopeDoc {
            scope,
            file: file.to_path_buf(),
            raw,
        });
    }
    if !unreadable {
        let mut found = document(&merged);
        rules.merged(&merged, &mut found);
        let problems = found.0.into_iter().map(|(path, message)| Diagnostic {
            file: attribute(&docs, &path).map(|f| f.display().to_string()),
            path: path.to_string(),
            message,
        });
        diagnostics.extend(problems);
    }
    if !diagnostics.is_empty() {
        return Err(ConfigError { diagnostics });
    }

    let base_file = docs
        .iter()
        .rev()
        .find(|d| matches!(d.scope, Scope::Local | Scope::Project))
        .map(|d| absolute_clean(&d.file))
        .unwrap_or_else(|| project_path.clone());
    let base_dir = base_file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    Ok(LoadedConfig {
        config: merged,
        base_dir,
        project_path,
        files: docs.into_iter().map(|d| d.file).collect(),
    })
}

/// serde_json's message without its trailing "at line L column C".
fn syntax_reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// Rewrite `mcpServers.X` as `sources.X {type: mcp, transport, disabledTools, oauth}` and give
/// every MCP source its service `services.X {source: X}` (contract 2.1).
fn normalize_mcp(config: &mut Config) {
    if let Some(servers) = config.mcp_servers.take() {
        let sources = config.sources.get_or_insert_with(BTreeMap::new);
        for (name, server) in servers {
            let transport = McpTransport {
                kind: Some(server.kind.unwrap_or_else(|| "stdio".to_owned())),
                command: server.command,
                args: server.args,
                env: server.env,
                pass_env: server.pass_env,
                url: server.url,
                headers: server.headers,
                header_secrets: server.header_secrets,
            };
            let source = Source {
                kind: Some(SourceType::Mcp),
                transport: Some(transport),
                disabled_tools: server.disabled_tools,
                oauth: server.oauth,
                ..Source::default()
            };
            sources.insert(name, source);
        }
    }
    let mcp_ids: Vec<String> = config
        .sources
        .iter()
        .flatten()
        .filter(|(_, s)| s.kind == Some(SourceType::Mcp))
        .map(|(id, _)| id.clone())
        .collect();
    if mcp_ids.is_empty() {
        return;
    }
    let services = config.services.get_or_insert_with(BTreeMap::new);
    for id in mcp_ids {
        let service = services.entry(id.clone()).or_default();
        if service.source.is_none() {
            service.source = Some(id);
        }
    }
}

/// The highest-precedence scope file that sets `path` (or its nearest parent). A source that
/// came from `mcpServers.X` is looked up there too.
fn attribute<'a>(docs: &'a [ScopeDoc], path: &JsonPath) -> Option<&'a Path> {
    let mut candidates = vec![path.clone()];
    if let [Segment::Key(top), Segment::Key(id), ..] = path.0.as_slice() {
        if top == "sources" {
            candidates.push(JsonPath::of(&["mcpServers", id]));
        }
    }
    for len in (1..=path.0.len()).rev() {
        for candidate in &candidates {
            let prefix = JsonPath(candidate.0.iter().take(len).cloned().collect());
            if let Some(doc) = docs.iter().rev().find(|d| prefix.lookup(&d.raw).is_some()) {
                return Some(doc.file.as_path());
            }
        }
    }
    docs.iter()
        .rev()
        .find(|d| d.scope == Scope::Project)
        .or(docs.last())
        .map(|d| d.file.as_path())
}
