//! Catalog settings: `sources.*`, `services.*` and `agents`, checked on the merged config.
//!
//! | rule | path |
//! |---|---|
//! | `type` is required; `uri` is required except for `mcp`, which needs `transport` | `sources.<id>.*` |
//! | `transport`, `disabledTools`, `oauth` only on `mcp` sources; `uri`, `redirects` never on them | `sources.<id>.*` |
//! | `redirects.allowOrigins` are exact origins | `sources.<id>.redirects.allowOrigins[i]` |
//! | `pin` only on `openapi` sources with an `http(s)` `uri` | `sources.<id>.pin` |
//! | `toolPins` only on `mcp` sources; each value is `sha256:` and 64 lowercase hex digits | `sources.<id>.toolPins.<tool>` |
//! | `toolNamePrefix` only on `mcp` sources; at most 64 of `A-Z a-z 0-9 _ . -` (so every name served at `/mcp` stays a valid MCP tool name) | `sources.<id>.toolNamePrefix` |
//! | a service names a known source; an `mcp` source has exactly its own service | `services.<id>.source` |
//! | a profile's `toolSet` and `agents.defaultProfile` exist | `agents.*` |
//!
//! An MCP source's transport is checked by `portcullis::mcp::settings`. Failure mode: one problem per
//! violated rule, at the offending key.

use portcullis_config::{Config, JsonPath, Problems, SourceType};
use portcullis_net::parse_origin;

/// A tool pin as written in config: `sha256:` and 64 lowercase hex digits.
fn valid_pin(pin: &str) -> bool {
    pin.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Longest `toolNamePrefix`: leaves room for the tool's own name within MCP's 128 characters.
pub const MAX_NAME_PREFIX: usize = 64;

/// A `toolNamePrefix`: only characters MCP allows in tool names, at most [`MAX_NAME_PREFIX`].
fn valid_name_prefix(prefix: &str) -> bool {
    prefix.len() <= MAX_NAME_PREFIX
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// Check `sources.*` and `services.*`.
pub fn check_sources(config: &Config, p: &mut Problems) {
    let sources = config.sources.as_ref();
    for (id, source) in sources.into_iter().flatten() {
        let base = JsonPath::of(&["sources", id]);
        match source.kind {
            None => p.push(base.key("type"), "is required"),
            Some(SourceType::Mcp) => {
                if source.uri.is_some() {
                    p.push(base.key("uri"), "is not allowed for mcp sources");
                }
                if source.transport.is_none() {
                    p.push(base.key("transport"), "is required for mcp sources");
                }
                if source.redirects.is_some() {
                    p.push(base.key("redirects"), "is not allowed for mcp sources");
                }
            }
            Some(_) => {
                if source.uri.as_deref().is_none_or(str::is_empty) {
                    p.push(base.key("uri"), "is required");
                }
                let exclusive = [
                    ("transport", source.transport.is_some()),
                    ("disabledTools", source.disabled_tools.is_some()),
                    ("oauth", source.oauth.is_some()),
                    ("toolPins", source.tool_pins.is_some()),
                    ("toolNamePrefix", source.tool_name_prefix.is_some()),
                ];
                for (key, set) in exclusive {
                    if set {
                        p.push(base.key(key), "is only allowed for mcp sources");
                    }
                }
            }
        }
        if source.pin.is_some() {
            let remote = source
                .uri
                .as_deref()
                .is_some_and(|u| u.starts_with("https://") || u.starts_with("http://"));
            if source.kind != Some(SourceType::Openapi) || !remote {
                p.push(
                    base.key("pin"),
                    "is only allowed for openapi sources fetched by URL (http:// or https://)",
                );
            }
        }
        for (tool, pin) in source.tool_pins.iter().flatten() {
            if !valid_pin(pin) {
                p.push(
                    base.key("toolPins").key(tool),
                    "must be \"sha256:\" followed by 64 lowercase hex digits (the digest `portcullis mcp accept` prints)",
                );
            }
        }
        if let Some(prefix) = &source.tool_name_prefix {
            if !valid_name_prefix(prefix) {
                p.push(
                    base.key("toolNamePrefix"),
                    format!("must be at most {MAX_NAME_PREFIX} characters of A-Z a-z 0-9 _ . - (MCP tool names allow no others)"),
                );
            }
        }
        let origins = source
            .redirects
            .as_ref()
            .and_then(|r| r.allow_origins.as_ref());
        for (i, origin) in origins.into_iter().flatten().enumerate() {
            if let Err(why) = parse_origin(origin) {
                let at = base.key("redirects").key("allowOrigins").index(i);
                p.push(at, why);
            }
        }
    }
    // An MCP source belongs to exactly one service, the one with the same key.
    let is_mcp = |id: &str| {
        sources
            .and_then(|s| s.get(id))
            .is_some_and(|s| s.kind == Some(SourceType::Mcp))
    };
    for (id, service) in config.services.iter().flatten() {
        let path = JsonPath::of(&["services", id, "source"]);
        match service.source.as_deref() {
            None => p.push(path, "is required"),
            Some(source_id) if sources.is_none_or(|s| !s.contains_key(source_id)) => {
                p.push(path, format!("references unknown source {source_id:?}"))
            }
            Some(source_id) if is_mcp(source_id) && source_id != id => p.push(
                path,
                format!("is a second service pointing at mcp source {source_id}"),
            ),
            Some(source_id) if is_mcp(id) && source_id != id => {
                p.push(path, format!("must reference {id:?} for mcp source"))
            }
            Some(_) => {}
        }
    }
}

/// Check `agents`: every profile's tool set and the default profile exist.
pub fn check_agents(config: &Config, p: &mut Problems) {
    let Some(agents) = &config.agents else { return };
    let tool_sets = config.curation.as_ref().and_then(|c| c.tool_sets.as_ref());
    for (name, profile) in agents.profiles.iter().flatten() {
        if let Some(set) = &profile.tool_set {
            if !tool_sets.is_some_and(|t| t.contains_key(set)) {
                p.push(
                    JsonPath::of(&["agents", "profiles", name, "toolSet"]),
                    format!("references unknown tool set {set:?} (define it in curation.toolSets)"),
                );
            }
        }
    }
    if let Some(default) = &agents.default_profile {
        if !agents
            .profiles
            .as_ref()
            .is_some_and(|pr| pr.contains_key(default))
        {
            p.push(
                JsonPath::of(&["agents", "defaultProfile"]),
                format!("references unknown profile {default:?}"),
            );
        }
    }
}
