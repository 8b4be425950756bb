//! Plugin settings: `plugins.*` and every reference to a plugin, checked on the merged config.
//!
//! The limits are the ones the plugin host enforces ([`super::engine::MAX_MEMORY_MIB`],
//! [`super::load::MAX_TIMEOUT_MS`], [`super::warm::MAX_INSTANCES`], [`super::warm::MAX_AGE_MS`]);
//! the messages are built from them, so a changed limit cannot leave a stale message.
//!
//! | rule | path |
//! |---|---|
//! | name is lowercase letters, digits and `-` | `plugins.<name>` |
//! | `path` is required and ends in `.wasm` | `plugins.<name>.path` |
//! | `sha256` is 64 hex digits | `plugins.<name>.sha256` |
//! | `grants.env` are variable names; `grants.files` non-empty; `grants.http` exact origins | `plugins.<name>.grants.*[i]` |
//! | `limits.memoryMiB` 1..=256, `limits.timeoutMs` 1..=60000 | `plugins.<name>.limits.*` |
//! | `prewarm.instances` 0..=16, `prewarm.maxAgeMs` 1..=600000 | `plugins.<name>.prewarm.*` |
//! | `secrets.*.plugin`, `policy.plugins[i]`, `runtime.server.auth.plugin` name a configured plugin | there |
//!
//! Whether a named plugin has the right *kind* can only be known by loading it; that is checked
//! when plugins load ([`super::PluginSet::load`]).

use super::engine::MAX_MEMORY_MIB;
use super::grants::Origin;
use super::load::MAX_TIMEOUT_MS;
use super::warm::{MAX_AGE_MS, MAX_INSTANCES};
use portcullis_config::{Config, JsonPath, Problems, SecretType};

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Check `plugins` and the references to it.
pub fn check(config: &Config, p: &mut Problems) {
    let plugins = config.plugins.as_ref();
    for (name, plugin) in plugins.into_iter().flatten() {
        let base = JsonPath::of(&["plugins", name]);
        if !valid_name(name) {
            p.push(
                base.clone(),
                "plugin names are 1-64 lowercase letters, digits and '-'",
            );
        }
        match plugin.path.as_deref() {
            None | Some("") => p.push(base.key("path"), "is required"),
            Some(path) if !path.ends_with(".wasm") => {
                p.push(base.key("path"), "must name a .wasm component")
            }
            Some(_) => {}
        }
        if let Some(sha) = &plugin.sha256 {
            if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                p.push(base.key("sha256"), "must be 64 hexadecimal digits");
            }
        }
        if let Some(grants) = &plugin.grants {
            let g = base.key("grants");
            for (i, var) in grants.env.iter().flatten().enumerate() {
                if var.is_empty() || var.contains('=') || var.contains('\0') {
                    p.push(
                        g.key("env").index(i),
                        "must be an environment variable name",
                    );
                }
            }
            for (i, dir) in grants.files.iter().flatten().enumerate() {
                if dir.is_empty() {
                    p.push(g.key("files").index(i), "must be a directory path");
                }
            }
            for (i, origin) in grants.http.iter().flatten().enumerate() {
                if let Err(e) = Origin::parse(origin) {
                    p.push(g.key("http").index(i), e);
                }
            }
        }
        if let Some(limits) = &plugin.limits {
            let l = base.key("limits");
            if let Some(mib) = limits.memory_mib {
                if !(1..=MAX_MEMORY_MIB).contains(&mib) {
                    p.push(
                        l.key("memoryMiB"),
                        format!("must be between 1 and {MAX_MEMORY_MIB}"),
                    );
                }
            }
            if let Some(ms) = limits.timeout_ms {
                if !(1..=MAX_TIMEOUT_MS).contains(&ms) {
                    p.push(
                        l.key("timeoutMs"),
                        format!("must be between 1 and {MAX_TIMEOUT_MS}"),
                    );
                }
            }
        }
        if let Some(prewarm) = &plugin.prewarm {
            let w = base.key("prewarm");
            if let Some(n) = prewarm.instances {
                if n > MAX_INSTANCES {
                    p.push(
                        w.key("instances"),
                        format!("must be between 0 and {MAX_INSTANCES}"),
                    );
                }
            }
            if let Some(ms) = prewarm.max_age_ms {
                if !(1..=MAX_AGE_MS).contains(&ms) {
                    p.push(
                        w.key("maxAgeMs"),
                        format!("must be between 1 and {MAX_AGE_MS}"),
                    );
                }
            }
        }
    }
    let known = |name: &str| plugins.is_some_and(|m| m.contains_key(name));
    for (key, secret) in config.secrets.iter().flatten() {
        if secret.kind != Some(SecretType::Plugin) {
            continue;
        }
        if let Some(name) = secret.plugin.as_deref().filter(|n| !n.is_empty()) {
            if !known(name) {
                p.push(
                    JsonPath::of(&["secrets", key, "plugin"]),
                    format!("names plugin {name:?}, which is not configured in plugins"),
                );
            }
        }
    }
    for (i, name) in config
        .policy
        .iter()
        .flat_map(|x| x.plugins.iter().flatten())
        .enumerate()
    {
        if !known(name) {
            p.push(
                JsonPath::of(&["policy", "plugins"]).index(i),
                format!("names plugin {name:?}, which is not configured in plugins"),
            );
        }
    }
    let auth = config
        .runtime
        .as_ref()
        .and_then(|r| r.server.as_ref())
        .and_then(|s| s.auth.as_ref());
    if let Some(name) = auth.and_then(|a| a.get("plugin")).and_then(|v| v.as_str()) {
        if !known(name) {
            p.push(
                JsonPath::of(&["runtime", "server", "auth", "plugin"]),
                format!("names plugin {name:?}, which is not configured in plugins"),
            );
        }
    }
}
