//! `portcullis policy explain` and the policy part of `portcullis check`, offline.
//!
//! Explain loads the config (every scope), builds the catalog and runs the same policy step
//! as `POST /v1/policy/explain` ([`portcullis::call::explain::policy`]) for one tool, principal and scope set, after the scope envelope
//! (when runtime auth is configured). Nothing is executed; no identity provider is contacted.
//! Offline there are no approval grants, so in grant mode an approval-required tool explains
//! as `approval_required`; policy-evaluator plugins are not run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use portcullis::catalog::Catalog;
use portcullis::config::{LoadedConfig, Mode, ScopePaths};
use portcullis::policy::approvals::canonical_arguments;
use portcullis::policy::{ApprovalStore, Call, PolicySet};

#[derive(Debug, Subcommand)]
pub(super) enum PolicyCommand {
    /// Print the decision for one call and every step that led to it (JSON), without executing.
    Explain(ExplainArgs),
}

#[derive(Debug, Args)]
pub(super) struct ExplainArgs {
    /// The project `.cli.json` (with the managed, user and local scopes around it).
    #[arg(long)]
    config: PathBuf,
    /// The tool id.
    #[arg(long)]
    tool: String,
    /// The caller's principal.
    #[arg(long)]
    principal: Option<String>,
    /// A scope of the caller's token (repeatable).
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// Requested mode: `discover` or `curated`.
    #[arg(long)]
    mode: Option<String>,
    /// Requested agent profile.
    #[arg(long)]
    profile: Option<String>,
    /// The contract's `approval: true` (flag mode only).
    #[arg(long)]
    approval: bool,
    /// Request body as JSON text.
    #[arg(long)]
    body: Option<String>,
}

pub(super) async fn run(command: PolicyCommand) -> Result<ExitCode, Box<dyn std::error::Error>> {
    match command {
        PolicyCommand::Explain(args) => explain(args).await,
    }
}

async fn load(
    config: &std::path::Path,
) -> Result<(LoadedConfig, Catalog), Box<dyn std::error::Error>> {
    let scopes = ScopePaths::discover(super::absolute(config)?);
    let loaded = portcullis::app::load(&scopes)?;
    let outcome = portcullis::app::build_catalog(&loaded).await;
    for error in &outcome.errors {
        eprintln!("sources.{}: {}", error.source_id, error.message);
    }
    Ok((loaded, outcome.catalog))
}

async fn explain(args: ExplainArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let mode = match args.mode.as_deref() {
        None => None,
        Some("discover") => Some(Mode::Discover),
        Some("curated") => Some(Mode::Curated),
        Some(other) => {
            return Err(format!("--mode must be discover or curated, not {other:?}").into())
        }
    };
    let body = args
        .body
        .as_deref()
        .map(|b| serde_json::from_str::<serde_json::Value>(b).map(|v| v.to_string()))
        .transpose()
        .map_err(|e| format!("--body is not JSON: {e}"))?;
    let (loaded, catalog) = load(&args.config).await?;
    let policy = PolicySet::compile(&loaded.config)?;
    let Some(tool) = catalog.tools.iter().find(|t| t.id == args.tool) else {
        return Err(format!("no tool {:?} in the catalog", args.tool).into());
    };
    let auth = loaded
        .config
        .runtime
        .as_ref()
        .and_then(|r| r.server.as_ref())
        .and_then(|s| s.auth.as_ref());
    let envelope = match auth {
        None => serde_json::json!({ "granted": true, "detail": "runtime auth is off: every tool" }),
        Some(value) => {
            let prefixes = portcullis::authn::ServerAuth::from_value(value)?.prefixes()?;
            let granted = portcullis::scopes_grant(&args.scopes, &prefixes, tool, &policy);
            serde_json::json!({ "granted": granted, "detail": format!("scopes {:?}", args.scopes) })
        }
    };
    let mut out = if envelope["granted"] == true {
        let arguments =
            canonical_arguments(&[], &Default::default(), body.as_deref().map(str::as_bytes));
        let call = Call {
            tool,
            mode,
            agent_profile: args.profile.as_deref(),
            principal: args.principal.as_deref(),
            scopes: &args.scopes,
            request_id: "offline",
            arguments: &arguments,
        };
        let store = ApprovalStore::default();
        portcullis::call::explain::policy(&policy, &store, &call, args.approval, false)
            .await
            .to_json()
    } else {
        serde_json::json!({ "decision": "deny", "reason": "authz_denied", "rule": null, "steps": [] })
    };
    out["toolId"] = tool.id.clone().into();
    out["envelope"] = envelope;
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}

/// `check`: warn about policy patterns that match no tool of the built catalog. Skipped when a
/// source failed to load (its tools are missing, so every pattern for them would be reported).
pub(super) fn check_patterns(loaded: &LoadedConfig, catalog: &Catalog, complete: bool) {
    if !complete {
        println!("note: policy patterns were not checked against the catalog (a source failed)");
        return;
    }
    let ids = catalog.tools.iter().map(|t| t.id.as_str());
    for warning in portcullis::policy::unmatched::unmatched_patterns(&loaded.config, ids) {
        println!(
            "warning: <merged config>: {}: {}",
            warning.path, warning.message
        );
    }
}
