//! The pool as the catalog's [`McpLister`]: a catalog build reads each `mcp` source's settings
//! here, syncs the pool to the accepted ones, and lists tools through the pooled sessions (the
//! same sessions tool calls use). Every listing passes through the tool pins ([`super::pins`]):
//! a tool whose definition no longer matches its pin is listed as withheld.

use std::collections::HashMap;

use futures_util::future::BoxFuture;

use super::{McpPool, SourceSettings};
use crate::catalog::{McpLister, McpListing, McpSource};
use crate::config::{Config, Source};

impl McpLister for McpPool {
    fn sync<'a>(
        &'a self,
        sources: &'a [(&'a str, &'a Source)],
        config: &'a Config,
    ) -> BoxFuture<'a, HashMap<String, Result<McpSource, String>>> {
        Box::pin(async move {
            let mut accepted = Vec::new();
            let mut views = HashMap::new();
            for (id, source) in sources {
                self.pins()
                    .set_config(id, source.tool_pins.clone().unwrap_or_default());
                let view = SourceSettings::from_config(id, source, config).map(|settings| {
                    let view = McpSource {
                        transport: settings.transport_name(),
                        disabled_tools: settings.disabled_tools.clone(),
                    };
                    accepted.push(settings);
                    view
                });
                views.insert((*id).to_owned(), view);
            }
            McpPool::sync(self, accepted).await;
            views
        })
    }

    fn list_tools<'a>(&'a self, source_id: &'a str) -> BoxFuture<'a, Result<McpListing, String>> {
        Box::pin(async move {
            let session = self.session(source_id).map_err(|e| e.to_string())?;
            let tools = session.list_tools().await.map_err(|e| e.to_string())?;
            let carried = session.carried_credentials().await;
            let withheld = self
                .pins()
                .admit(source_id, &tools, &carried)
                .map_err(|e| e.to_string())?;
            Ok(McpListing { tools, withheld })
        })
    }
}
