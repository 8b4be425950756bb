//! `portcullis policy explain` and the policy part of `portcullis check`, offline.
//!
//! Explain answers what `POST /v1/policy/explain` answers for the same config and caller: the
//! composition root builds the snapshot and runs the same `call::explain` (lookup, scope
//! envelope when runtime auth is configured, policy with its evaluator plugins) for one tool,
//! principal and scope set ([`portcullis::app::explain`]), and adds the `envelope` the scopes
//! give. Nothing is executed; no identity provider is contacted. Offline there are no approval
//! grants, so in grant mode an approval-required tool explains as `approval_required`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use portcullis::catalog::Catalog;
use portcullis::config::{LoadedConfig, Mode, ScopePaths};

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
    let scopes = ScopePaths::discover(super::absolute(&args.config)?);
    let call = portcullis::app::OfflineCall {
        tool_id: args.tool,
        principal: args.principal,
        scopes: args.scopes,
        mode,
        agent_profile: args.profile,
        approval: args.approval,
        body,
    };
    let out = portcullis::app::explain(&scopes, &call, |errors| {
        for error in errors {
            eprintln!("sources.{}: {}", error.source_id, error.message);
        }
    })
    .await?;
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
