//! How the catalog lists an MCP source's tools without depending on the MCP client: the build
//! is handed a [`McpLister`] (the runtime's `mcp::McpPool`, or a temporary one the CLI opens for
//! one build) and asks it for each source's settings and tool list.
//!
//! | call | when | failure |
//! |---|---|---|
//! | [`McpLister::sync`] | once per build, with every enabled `mcp` source | a source whose settings do not hold fails alone, with the reason |
//! | [`McpLister::list_tools`] | once per accepted source | that source fails alone (server down, protocol error) |
//!
//! A listing may hold tools back ([`McpListing::withheld`]: a definition that no longer matches
//! its pin). The build maps them like the others, so they keep their ids, but puts them in
//! [`crate::Catalog::withheld`] instead of the catalog: no view shows them and a call by their
//! id is answered with why, not "not found".
//!
//! A build without a lister ([`super::BuildOptions::mcp`] `None`) fails every `mcp` source with
//! [`NO_LISTER`]; the other sources still load.

use std::collections::HashMap;

use futures_util::future::BoxFuture;

use portcullis_config::{Config, Source};

/// The reason an `mcp` source fails in a build that was given no [`McpLister`].
pub const NO_LISTER: &str = "mcp sources are listed through MCP sessions, and this build has none";

/// What the catalog reads from an accepted `mcp` source's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpSource {
    /// Transport name (`stdio`, `streamable-http`, `sse`), recorded on each tool.
    pub transport: &'static str,
    /// `disabledTools`: listed tools left out of the catalog.
    pub disabled_tools: Vec<String>,
}

/// One source's tools as its lister admits them.
#[derive(Debug, Clone, Default)]
pub struct McpListing {
    /// Every tool the server lists now, withheld ones included.
    pub tools: Vec<rmcp::model::Tool>,
    /// Tool name -> why it is held back (shown to callers and operators; never a secret).
    pub withheld: HashMap<String, String>,
}

/// The MCP sessions a catalog build lists tools through (implemented by `mcp::McpPool`).
pub trait McpLister: Send + Sync + std::fmt::Debug {
    /// Read the settings of every `mcp` source in `sources` (id and config entry) and make the
    /// sessions match exactly the accepted ones. Returns, per source id, what the catalog needs
    /// or why the source cannot be used.
    fn sync<'a>(
        &'a self,
        sources: &'a [(&'a str, &'a Source)],
        config: &'a Config,
    ) -> BoxFuture<'a, HashMap<String, Result<McpSource, String>>>;

    /// The tools source `source_id`'s server lists now, and which of them are held back.
    fn list_tools<'a>(&'a self, source_id: &'a str) -> BoxFuture<'a, Result<McpListing, String>>;
}
