//! Command-line interface: argument parsing and the commands themselves.

mod pins;
mod policy;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use portcullis::app::{Runtime, RuntimeOptions};
use portcullis::config::ScopePaths;
use portcullis::server;
use sha2::Digest;

/// Portcullis: the security boundary between callers and the APIs they use.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the runtime server.
    Serve(ServeArgs),
    /// Validate a config and print every problem (exit code 0 = valid, 1 = invalid).
    Check(CheckArgs),
    /// Config utilities.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run the dev-mode demo API on its own (a benchmark upstream).
    DemoUpstream(DemoUpstreamArgs),
    /// Audit log utilities.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Policy utilities.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// WebAssembly plugin utilities.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// MCP utilities.
    #[command(subcommand)]
    Mcp(McpCommand),
    /// OpenAPI source utilities.
    #[command(subcommand)]
    Openapi(pins::OpenapiCommand),
}

#[derive(Debug, Subcommand)]
enum McpCommand {
    /// Serve MCP on stdin/stdout, relaying every message to a running runtime's /mcp (the
    /// runtime authenticates, filters and runs everything). The token comes from
    /// PORTCULLIS_MCP_TOKEN or the file --token-file names.
    Stdio(McpStdioArgs),
    /// Accept the changed definitions of an MCP source's tools (all of them, or `--tool`).
    Accept(pins::AcceptArgs),
}

#[derive(Debug, Args)]
struct McpStdioArgs {
    /// The runtime's URL (its base or its /mcp URL).
    #[arg(
        long,
        env = "PORTCULLIS_MCP_URL",
        default_value = "http://127.0.0.1:8765"
    )]
    url: String,
    /// A file holding the bearer token, read again for every message.
    #[arg(long, env = "PORTCULLIS_MCP_TOKEN_FILE")]
    token_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Print a component's kind, metadata, WIT world and version, imports, config schema and sha256.
    Inspect(PluginInspectArgs),
    /// Load every plugin a config names and call its `init` (exit 0 = all loaded).
    Check(PluginCheckArgs),
    /// Create a plugin crate (builds as is: `cargo build --release --target wasm32-wasip2`).
    New(PluginNewArgs),
}

#[derive(Debug, Args)]
struct PluginInspectArgs {
    /// The `.wasm` component.
    file: PathBuf,
}

#[derive(Debug, Args)]
struct PluginCheckArgs {
    /// The project `.cli.json`.
    #[arg(long)]
    config: PathBuf,
}

#[derive(Debug, Args)]
struct PluginNewArgs {
    /// `secret-source`, `policy-evaluator` or `auth-profile`.
    kind: String,
    /// Plugin and crate name: lowercase letters, digits and `-` (`vault-secrets`).
    name: String,
    /// Directory to create (default `./<name>`); must not exist or be empty.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Depend on this `sdk/` directory (default: the checkout this binary was built from).
    #[arg(long, conflicts_with = "sdk_version")]
    sdk_path: Option<PathBuf>,
    /// Depend on this crates.io version of `portcullis-sdk` instead of a path.
    #[arg(long)]
    sdk_version: Option<String>,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the chain, sequence and checkpoints; print OK or the first bad record (exit 1).
    Verify(AuditVerifyArgs),
    /// Print the last matching records; with --follow keep printing new ones (handles rotation).
    Tail(AuditTailArgs),
}

#[derive(Debug, Args)]
struct AuditTailArgs {
    /// The audit file.
    #[arg(long)]
    audit_path: PathBuf,
    /// How many records to print first.
    #[arg(long, short = 'n', default_value_t = 10)]
    lines: usize,
    /// Keep printing records as they are appended.
    #[arg(long, short = 'f')]
    follow: bool,
    /// Only records at or after this RFC 3339 instant.
    #[arg(long)]
    from: Option<String>,
    /// Only records before this RFC 3339 instant.
    #[arg(long)]
    to: Option<String>,
    /// Only this principal.
    #[arg(long)]
    principal: Option<String>,
    /// Only this tool id.
    #[arg(long)]
    tool_id: Option<String>,
    /// Only this event type (`tool_execution_intent` records are shown only when asked for).
    #[arg(long)]
    event_type: Option<String>,
    /// Only `allowed`, `denied` or `error`.
    #[arg(long)]
    decision: Option<String>,
}

#[derive(Debug, Args)]
struct AuditVerifyArgs {
    /// The audit file.
    #[arg(long)]
    audit_path: PathBuf,
    /// HMAC key (default as `serve`: `<state root>/audit.key`).
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// Checkpoint file (default `<audit path>.checkpoints`).
    #[arg(long)]
    checkpoints: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// The project `.cli.json` this runtime serves (requests are bound to it).
    #[arg(long, required_unless_present = "dev", conflicts_with = "dev")]
    config: Option<PathBuf>,
    /// Serve the bundled demo API with no config (loopback only).
    #[arg(long)]
    dev: bool,
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:8765", env = "PORTCULLIS_ADDR")]
    addr: SocketAddr,
    /// State root; the instance keeps its files in `<state-dir>/instances/<id>`.
    #[arg(long, env = "PORTCULLIS_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Audit file (default `<instance dir>/audit.log`).
    #[arg(long)]
    audit_path: Option<PathBuf>,
    /// Audit HMAC key, outside the audit directory (default `<state root>/audit.key`, created).
    #[arg(long)]
    audit_key_file: Option<PathBuf>,
    /// Audit checkpoint file (default `<audit path>.checkpoints`).
    #[arg(long)]
    audit_checkpoints: Option<PathBuf>,
    /// Rotate the audit file at this size (`K`, `M`, `G` suffixes; `0` = never).
    #[arg(long, value_parser = parse_size, default_value = "256M")]
    audit_rotate_size: u64,
    /// Also rotate the audit file when it is this old (`s`, `m`, `h`, `d` suffixes, e.g. `1d`).
    #[arg(long, value_parser = parse_duration)]
    audit_rotate_interval: Option<std::time::Duration>,
    /// Keep at most this many rotated audit files (default: keep all).
    #[arg(long)]
    audit_retain_files: Option<usize>,
    /// Remove rotated audit files older than this (e.g. `90d`; default: keep all).
    #[arg(long, value_parser = parse_duration)]
    audit_retain_age: Option<std::time::Duration>,
    /// Answer an executed call only once its outcome record is synced too (default: once it is
    /// queued; the intent record is always synced before the upstream call).
    #[arg(long)]
    audit_sync_outcomes: bool,
    /// Benchmarking/testing only: skip the audit fsync (records are not durable).
    #[arg(long, hide = true)]
    audit_no_sync: bool,
    /// Remote document cache (default `<instance dir>/cache/http`).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Instance id (default derived from the config path).
    #[arg(long)]
    instance_id: Option<String>,
    /// Listen on a non-loopback address although runtime auth is off (refused otherwise):
    /// only when something in front of the runtime authenticates every caller.
    #[arg(long)]
    allow_unauthenticated_network: bool,
    #[command(flatten)]
    lifecycle: LifecycleArgs,
}

/// Session leases (`docs/operations.md`, "Runtime lifecycle"); off unless both lease flags
/// are above 0.
#[derive(Debug, Args)]
struct LifecycleArgs {
    /// Seconds between a client's heartbeats (`POST /v1/runtime/heartbeat`).
    #[arg(long, default_value_t = 0)]
    heartbeat_seconds: u64,
    /// Heartbeats a session may miss before its lease expires.
    #[arg(long, default_value_t = 0)]
    missed_heartbeat_limit: u32,
    /// What happens when the last lease expires or is closed (default `manual`: keep running).
    #[arg(long, value_enum)]
    shutdown: Option<server::lifecycle::ShutdownMode>,
    /// Whom sessions belong to, echoed in `runtime/info` (default `terminal`).
    #[arg(long, value_enum)]
    session_scope: Option<server::lifecycle::SessionScope>,
    /// `exclusive` (default): one session at a time; `group`: several.
    #[arg(long, value_enum)]
    share: Option<server::lifecycle::ShareMode>,
    /// The group session was derived from a configured share key (echoed in `runtime/info`).
    #[arg(long)]
    share_key_present: bool,
    /// Heartbeats that carry a `configFingerprint` must carry this one.
    #[arg(long)]
    config_fingerprint: Option<String>,
}

impl LifecycleArgs {
    fn options(self) -> server::lifecycle::LifecycleOptions {
        server::lifecycle::LifecycleOptions {
            heartbeat_seconds: self.heartbeat_seconds,
            missed_heartbeat_limit: self.missed_heartbeat_limit,
            shutdown: self.shutdown,
            session_scope: self.session_scope,
            share: self.share,
            share_key_present: self.share_key_present,
            config_fingerprint: self.config_fingerprint.filter(|f| !f.is_empty()),
        }
    }
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// The project `.cli.json` to validate (with the managed, user and local scopes around it).
    #[arg(long)]
    config: PathBuf,
    /// Fail (exit 1) on warnings too: for a check run on the serving host, where a secret
    /// reference that cannot be resolved (unset variable, missing file) is a real problem.
    #[arg(long)]
    strict: bool,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the JSON Schema of `.cli.json`.
    Schema,
}

#[derive(Debug, Args)]
struct DemoUpstreamArgs {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:9000")]
    addr: SocketAddr,
    /// Require this `X-Demo-Key` on every route but `/health`.
    #[arg(long)]
    key: Option<String>,
}

/// Run the parsed command.
pub async fn run(cli: Cli) -> Result<ExitCode, Box<dyn std::error::Error>> {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Check(args) => check(&args).await,
        Command::Config(ConfigCommand::Schema) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&portcullis::config::schema::config_schema())?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit(AuditCommand::Verify(args)) => audit_verify(&args),
        Command::Plugin(PluginCommand::Inspect(args)) => plugin_inspect(&args).await,
        Command::Plugin(PluginCommand::Check(args)) => plugin_check(&args).await,
        Command::Audit(AuditCommand::Tail(args)) => audit_tail(&args),
        Command::Plugin(PluginCommand::New(args)) => plugin_new(&args),
        Command::Policy(command) => policy::run(command).await,
        Command::Mcp(McpCommand::Stdio(args)) => {
            let options = server::mcp_door::stdio::RelayOptions {
                url: args.url,
                token: std::env::var("PORTCULLIS_MCP_TOKEN")
                    .ok()
                    .filter(|t| !t.is_empty()),
                token_file: args.token_file,
            };
            server::mcp_door::stdio::run(options).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Mcp(McpCommand::Accept(args)) => pins::accept(&args),
        Command::Openapi(command) => pins::run_openapi(command),
        Command::DemoUpstream(args) => {
            let listener = tokio::net::TcpListener::bind(args.addr).await?;
            eprintln!(
                "demo upstream listening on http://{}",
                listener.local_addr()?
            );
            portcullis::dev::upstream::serve(listener, args.key).await;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `plugin inspect`: what a component is, without any config.
async fn plugin_inspect(args: &PluginInspectArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let file = args.file.clone();
    let inspection =
        tokio::task::spawn_blocking(move || portcullis::plugins::inspect(&file)).await?;
    let inspection = match inspection {
        Ok(inspection) => inspection,
        Err(error) => {
            println!("FAILED: {error}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let meta = &inspection.metadata;
    println!("kind:          {}", inspection.kind.label());
    println!("name:          {}", meta.name);
    println!("version:       {}", meta.version);
    println!("description:   {}", meta.description);
    println!("world:         {}", inspection.world);
    println!("sha256:        {}", inspection.sha256);
    println!("imports:");
    for import in &inspection.imports {
        println!("  {import}");
    }
    let schema = serde_json::from_str::<serde_json::Value>(&meta.config_schema)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| meta.config_schema.clone());
    println!("config schema:\n{schema}");
    Ok(ExitCode::SUCCESS)
}

/// `plugin check`: load (compile, link, `init`) every configured plugin.
async fn plugin_check(args: &PluginCheckArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let scopes = ScopePaths::discover(absolute(&args.config)?);
    let report = portcullis::app::check(&scopes);
    if !report.ok() {
        print!("{report}");
        return Ok(ExitCode::FAILURE);
    }
    let loaded = portcullis::app::load(&scopes)?;
    let config = loaded.config.clone();
    let base_dir = loaded.base_dir.clone();
    let result = tokio::task::spawn_blocking(move || {
        portcullis::plugins::PluginSet::load(&config, &base_dir)
    })
    .await?;
    match result {
        Ok(set) => {
            for plugin in set.iter() {
                println!(
                    "OK {}: {} {} {} (sha256 {})",
                    plugin.name(),
                    plugin.kind().label(),
                    plugin.metadata().name,
                    plugin.metadata().version,
                    plugin.sha256()
                );
            }
            if set.is_empty() {
                println!("no plugins configured");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            println!("FAILED: {error}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `plugin new`: write the crate and say how to build it.
fn plugin_new(args: &PluginNewArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    use portcullis::plugins_scaffold::{scaffold, ScaffoldKind, SdkDependency};
    let kind: ScaffoldKind = args.kind.parse()?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    let sdk = match (&args.sdk_path, &args.sdk_version) {
        (Some(path), _) => SdkDependency::Path(absolute(path)?),
        (None, Some(version)) => SdkDependency::Version(version.clone()),
        (None, None) => SdkDependency::for_this_build(),
    };
    scaffold(kind, &args.name, &dir, &sdk)?;
    println!("created {kind} plugin `{}` in {}", args.name, dir.display());
    println!("  cd {} && cargo test", dir.display());
    println!(
        "  cargo build --release --target wasm32-wasip2   # -> target/wasm32-wasip2/release/{}.wasm",
        args.name.replace('-', "_")
    );
    Ok(ExitCode::SUCCESS)
}

/// `audit verify`: exit 0 with a summary, or 1 naming the first bad record.
fn audit_verify(args: &AuditVerifyArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let defaults = audit_options(&args.audit_path, args.audit_path.parent(), None, None);
    let key_file = args.key_file.clone().unwrap_or(defaults.key_file);
    let checkpoints = args.checkpoints.clone().unwrap_or(defaults.checkpoint_path);
    let key = portcullis::audit::chain::AuditKey::load(&key_file)?;
    match portcullis::audit::verify::verify_files(&key, &args.audit_path, &checkpoints)? {
        Ok(report) => {
            println!(
                "OK: {} records (seq {}..={}) in {} file(s), {} checkpoints",
                report.records, report.first_seq, report.last_seq, report.files, report.checkpoints
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(failure) => {
            println!("FAILED: {failure}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `256M`, `10K`, `1G` or plain bytes.
fn parse_size(raw: &str) -> Result<u64, String> {
    let (digits, shift) = match raw.as_bytes().last() {
        Some(b'K' | b'k') => (&raw[..raw.len() - 1], 10),
        Some(b'M' | b'm') => (&raw[..raw.len() - 1], 20),
        Some(b'G' | b'g') => (&raw[..raw.len() - 1], 30),
        _ => (raw, 0),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("{raw:?} is not a size like 256M"))
}

/// `30s`, `15m`, `6h`, `1d`.
fn parse_duration(raw: &str) -> Result<std::time::Duration, String> {
    let unit = match raw.as_bytes().last() {
        Some(b's') => 1,
        Some(b'm') => 60,
        Some(b'h') => 3600,
        Some(b'd') => 86_400,
        _ => 0,
    };
    raw.get(..raw.len().saturating_sub(1))
        .and_then(|d| d.parse::<u64>().ok())
        .filter(|&n| unit > 0 && n > 0)
        .and_then(|n| n.checked_mul(unit))
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("{raw:?} is not a duration like 1d, 6h, 15m or 30s"))
}

/// `audit tail`: the last records, then (with `--follow`) new ones as they are appended.
fn audit_tail(args: &AuditTailArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let query = portcullis::audit::AuditQuery::parse(portcullis::audit::QueryParams {
        from: args.from.as_deref(),
        to: args.to.as_deref(),
        principal: args.principal.as_deref(),
        tool_id: args.tool_id.as_deref(),
        event_type: args.event_type.as_deref(),
        decision: args.decision.as_deref(),
        ..Default::default()
    })?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.follow {
        portcullis::audit::tail::follow(&args.audit_path, &query, args.lines, &mut out, &|| false)?;
    } else {
        portcullis::audit::tail::last(&args.audit_path, &query, args.lines, &mut out)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn audit_options(
    path: &Path,
    state_dir: Option<&Path>,
    key_file: Option<PathBuf>,
    checkpoints: Option<PathBuf>,
) -> portcullis::audit::AuditOptions {
    let mut options = portcullis::audit::AuditOptions::for_instance(
        path.to_owned(),
        state_dir.unwrap_or(Path::new(".")),
    );
    if let Some(key_file) = key_file {
        options.key_file = key_file;
    }
    if let Some(checkpoints) = checkpoints {
        options.checkpoint_path = checkpoints;
    }
    options
}

/// Validate the config, then build the catalog so unloadable sources are reported too.
async fn check(args: &CheckArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let scopes = ScopePaths::discover(absolute(&args.config)?);
    let report = portcullis::app::check(&scopes);
    print!("{report}");
    if !report.ok() {
        return Ok(ExitCode::FAILURE);
    }
    if args.strict && !report.warnings.is_empty() {
        println!("{} warning(s) (--strict)", report.warnings.len());
        return Ok(ExitCode::FAILURE);
    }
    let loaded = portcullis::app::load(&scopes)?;
    let outcome = portcullis::app::build_catalog(&loaded).await;
    for error in &outcome.errors {
        println!("sources.{}: {}", error.source_id, error.message);
    }
    for warning in &outcome.warnings {
        println!(
            "warning: sources.{}: {}",
            warning.source_id, warning.message
        );
    }
    policy::check_patterns(&loaded, &outcome.catalog, outcome.errors.is_empty());
    println!(
        "{} tools from {} services",
        outcome.catalog.tools.len(),
        outcome.catalog.services.len()
    );
    let warned = args.strict && !outcome.warnings.is_empty();
    Ok(if outcome.errors.is_empty() && !warned {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn absolute(path: &Path) -> std::io::Result<PathBuf> {
    Ok(server::binding::absolute_clean(
        path,
        &std::env::current_dir()?,
    ))
}

/// Contract instance-id slug: `[a-z0-9]` kept, `- _ space .` become `-`, the rest dropped.
fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if matches!(c, '-' | '_' | ' ' | '.') && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

/// `<slug(parent dir)>-<10 hex of sha256(path)>`, as the contract derives it.
fn derive_instance_id(config: &Path) -> String {
    let digest = hex::encode(sha2::Sha256::digest(config.to_string_lossy().as_bytes()));
    let parent = config
        .parent()
        .and_then(Path::file_name)
        .map(|n| slug(&n.to_string_lossy()))
        .unwrap_or_default();
    if parent.is_empty() {
        digest[..10].to_owned()
    } else {
        format!("{parent}-{}", &digest[..10])
    }
}

fn default_state_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("portcullis");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    home.join(".local/state/portcullis")
}

async fn serve(args: ServeArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let lifecycle = args.lifecycle.options();
    lifecycle.validate()?;
    let state_root = args.state_dir.clone().unwrap_or_else(default_state_root);
    let (scopes, instance_id, dev) = if args.dev {
        if !args.addr.ip().is_loopback() {
            return Err(format!(
                "--dev serves a demo with a built-in key; it only binds to loopback, not {}",
                args.addr
            )
            .into());
        }
        let instance_id = args
            .instance_id
            .as_deref()
            .map(slug)
            .unwrap_or_else(|| "dev".to_owned());
        let setup =
            portcullis::dev::prepare(&state_root.join("instances").join(&instance_id).join("dev"))
                .await?;
        // Dev mode is self-contained: host-level managed/user scopes are not merged in.
        let scopes = ScopePaths {
            project: setup.config_path.clone(),
            ..ScopePaths::default()
        };
        (scopes, instance_id, Some(setup))
    } else {
        let config = absolute(args.config.as_deref().unwrap_or(Path::new(".cli.json")))?;
        let instance_id = args
            .instance_id
            .as_deref()
            .map(slug)
            .unwrap_or_else(|| derive_instance_id(&config));
        (ScopePaths::discover(config), instance_id, None)
    };
    let state_dir = state_root.join("instances").join(&instance_id);
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let options = RuntimeOptions {
        scopes,
        instance_id,
        audit_path: args
            .audit_path
            .unwrap_or_else(|| state_dir.join("audit.log")),
        cache_dir: args
            .cache_dir
            .unwrap_or_else(|| state_dir.join("cache/http")),
        state_dir,
        url: url.clone(),
        settings: std::sync::Arc::new(portcullis::app::Settings),
    };
    let mut audit = audit_options(
        &options.audit_path,
        Some(&options.state_dir),
        args.audit_key_file,
        args.audit_checkpoints,
    );
    audit.durable = !args.audit_no_sync;
    audit.sync_outcomes = args.audit_sync_outcomes;
    audit.rotate_bytes = Some(args.audit_rotate_size).filter(|&n| n > 0);
    audit.rotate_interval = args.audit_rotate_interval;
    audit.retain_files = args.audit_retain_files;
    audit.retain_age = args.audit_retain_age;
    let runtime = Runtime::start_with_audit(options, audit).await?;
    let snapshot = runtime.snapshot();
    tracing::info!(
        tools = snapshot.catalog.tools.len(),
        failed_sources = snapshot.source_errors.len(),
        "listening on {url}"
    );
    if let Some(setup) = &dev {
        println!("{}", portcullis::dev::banner(&url, setup));
    }
    let serve_options = server::ServeOptions {
        allow_unauthenticated_network: args.allow_unauthenticated_network,
        lifecycle,
    };
    server::serve_with(listener, runtime, serve_options).await?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_follow_the_contract_slug() {
        assert_eq!(slug("Team A_b.c"), "team-a-b-c");
        let id = derive_instance_id(Path::new("/srv/My App/.cli.json"));
        assert!(
            id.starts_with("my-app-") && id.len() == "my-app-".len() + 10,
            "{id}"
        );
    }
}
