//! `portcullis mcp accept` and `portcullis openapi accept`: accept what a pin holds back (the
//! changed tool definitions an MCP source's tools are withheld for, the changed document of a
//! `pin: true` OpenAPI source).
//!
//! The runtime records each pending definition in `<stateDir>/mcp-pins/` (`mcp::pins`); this
//! command promotes them to pins, prints what changed and the digest a config pin
//! (`sources.<id>.toolPins`) would carry, and exits. A running runtime watches the pin files,
//! so it rebuilds its catalog at once and audits the acceptance (`tool_definition_accepted`).
//! The instance is found as `serve` finds it: `--state-dir` (or `PORTCULLIS_STATE_DIR`) and
//! `--instance-id`, or the id derived from `--config`. `openapi accept` promotes the waiting
//! document of `<stateDir>/openapi-pins/` (`catalog::doc_pins`) the same way.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use portcullis::catalog::doc_pins;
use portcullis::mcp::pins;

#[derive(Debug, Subcommand)]
pub(super) enum OpenapiCommand {
    /// Accept the changed document of a `pin: true` OpenAPI source.
    Accept(DocumentAcceptArgs),
}

#[derive(Debug, Args)]
pub(super) struct AcceptArgs {
    /// The MCP source id (its key under `sources`).
    source: String,
    /// Accept only this tool (its name on the MCP server).
    #[arg(long)]
    tool: Option<String>,
    #[command(flatten)]
    instance: InstanceArgs,
}

#[derive(Debug, Args)]
pub(super) struct DocumentAcceptArgs {
    /// The OpenAPI source id (its key under `sources`).
    source: String,
    #[command(flatten)]
    instance: InstanceArgs,
}

/// Which instance's state to change, found as `serve` finds it.
#[derive(Debug, Args)]
pub(super) struct InstanceArgs {
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

pub(super) fn run_openapi(command: OpenapiCommand) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let OpenapiCommand::Accept(args) = command;
    let dir = args.instance.state_dir()?.join(doc_pins::DOCUMENT_PIN_DIR);
    match doc_pins::accept(&dir, &args.source) {
        Ok(Some((previous, digest))) => {
            println!(
                "accepted the document of {} {digest} (was {previous})",
                args.source
            );
            Ok(ExitCode::SUCCESS)
        }
        Ok(None) => {
            println!(
                "nothing to accept: no changed document of source {:?} is waiting",
                args.source
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("{error}");
            Ok(ExitCode::FAILURE)
        }
    }
}

impl InstanceArgs {
    /// `<state root>/instances/<id>`.
    fn state_dir(&self) -> std::io::Result<PathBuf> {
        let instance_id = match &self.instance_id {
            Some(id) => super::slug(id),
            None => super::derive_instance_id(&super::absolute(&self.config)?),
        };
        Ok(self
            .state_dir
            .clone()
            .unwrap_or_else(super::default_state_root)
            .join("instances")
            .join(instance_id))
    }
}

pub(super) fn accept(args: &AcceptArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let dir = args.instance.state_dir()?.join(pins::PIN_DIR);
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
