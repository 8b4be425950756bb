//! `portcullis mcp accept`: accept the changed tool definitions an MCP source is withheld for.
//!
//! The runtime records each pending definition in `<stateDir>/mcp-pins/` (`mcp::pins`); this
//! command promotes them to pins, prints what changed and the digest a config pin
//! (`sources.<id>.toolPins`) would carry, and exits. A running runtime watches the pin files,
//! so it rebuilds its catalog at once and audits the acceptance (`tool_definition_accepted`).
//! The instance is found as `serve` finds it: `--state-dir` (or `PORTCULLIS_STATE_DIR`) and
//! `--instance-id`, or the id derived from `--config`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use portcullis::mcp::pins;

#[derive(Debug, Subcommand)]
pub(super) enum McpCommand {
    /// Accept the changed definitions of an MCP source's tools (all of them, or `--tool`).
    Accept(AcceptArgs),
}

#[derive(Debug, Args)]
pub(super) struct AcceptArgs {
    /// The MCP source id (its key under `sources`).
    source: String,
    /// Accept only this tool (its name on the MCP server).
    #[arg(long)]
    tool: Option<String>,
    /// The project `.cli.json` the runtime serves (gives the default instance id).
    #[arg(long, default_value = ".cli.json")]
    config: PathBuf,
    /// State root, as given to `serve`.
    #[arg(long, env = "PORTCULLIS_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Instance id, as given to `serve`.
    #[arg(long)]
    instance_id: Option<String>,
}

pub(super) fn run(command: McpCommand) -> Result<ExitCode, Box<dyn std::error::Error>> {
    match command {
        McpCommand::Accept(args) => accept(&args),
    }
}

fn accept(args: &AcceptArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let instance_id = match &args.instance_id {
        Some(id) => super::slug(id),
        None => super::derive_instance_id(&super::absolute(&args.config)?),
    };
    let dir = args
        .state_dir
        .clone()
        .unwrap_or_else(super::default_state_root)
        .join("instances")
        .join(instance_id)
        .join(pins::PIN_DIR);
    let accepted = match pins::accept(&dir, &args.source, args.tool.as_deref()) {
        Ok(accepted) => accepted,
        Err(error) => {
            eprintln!("{error}");
            return Ok(ExitCode::FAILURE);
        }
    };
    if accepted.is_empty() {
        println!(
            "nothing to accept: no changed tool definition of source {:?} is waiting",
            args.source
        );
    }
    for tool in &accepted {
        let previous = tool.previous.as_deref().unwrap_or("none");
        println!("accepted {} {} (was {previous})", tool.name, tool.digest);
        for change in &tool.changes {
            let side = |key: &str| {
                change
                    .get(key)
                    .map_or("(absent)".to_owned(), |v| v.to_string())
            };
            println!(
                "  {}: {} -> {}",
                change["path"].as_str().unwrap_or_default(),
                side("before"),
                side("after")
            );
        }
    }
    if !accepted.is_empty() {
        let pins: serde_json::Map<String, serde_json::Value> = accepted
            .iter()
            .map(|t| (t.name.clone(), t.digest.clone().into()))
            .collect();
        println!(
            "to pin in config instead: sources.{}.toolPins = {}",
            args.source,
            serde_json::Value::Object(pins)
        );
    }
    Ok(ExitCode::SUCCESS)
}
