//! MCP source rules (contract 6.1), checked on the merged config: the check half of
//! [`super`], which reads the same values once they passed.
//!
//! | transport | required | forbidden |
//! |---|---|---|
//! | `stdio` | `command` | `url`, `headers`, `headerSecrets`, `oauth` |
//! | `sse` | `url` | `command`, `args`, `env`, `passEnv`, `oauth` |
//! | `streamable-http` | `url` | `command`, `args`, `env`, `passEnv` |
//!
//! `passEnv` entries must be variable names (`[A-Za-z_][A-Za-z0-9_]*`).
//!
//! Transport `oauth` (streamable-http only) must be a direct `clientCredentials` client with
//! `clientId`, `clientSecret` and `issuer` or `tokenURL`, and owns the `Authorization` header.
//! The transport `url` and the oauth `issuer` and `tokenURL` must be `https` (plain `http` to a
//! loopback host only), the rule of `runtime.server.auth` URLs: the runtime sends credentials
//! there. `headers` and `headerSecrets` may not name the same header (case-insensitive). There is no
//! default transport on a canonical source; `mcpServers` entries default to `stdio` when
//! normalized. Failure mode: one problem per violated rule, at the offending key.

use serde_json::Value;

use crate::config::{Config, JsonPath, McpTransport, Problems, SourceType};
use crate::net::https_or_loopback;
use crate::oauth::AuthMethod;

/// Check every MCP source in the merged config.
pub fn check(config: &Config, p: &mut Problems) {
    for (id, source) in config.sources.iter().flatten() {
        if source.kind != Some(SourceType::Mcp) {
            continue;
        }
        let base = JsonPath::of(&["sources", id]);
        if let Some(transport) = &source.transport {
            transport_rules(transport, source.oauth.as_ref(), &base, p);
        }
        if let Some(oauth) = &source.oauth {
            oauth_rules(oauth, &base.key("oauth"), p);
        }
    }
}

fn transport_rules(t: &McpTransport, oauth: Option<&Value>, base: &JsonPath, p: &mut Problems) {
    let tp = base.key("transport");
    let set = |present: bool, key: &str| present.then(|| key.to_owned());
    let stdio_only = [
        set(t.command.is_some(), "command"),
        set(t.args.is_some(), "args"),
        set(t.env.is_some(), "env"),
        set(t.pass_env.is_some(), "passEnv"),
    ];
    for (i, name) in t.pass_env.iter().flatten().enumerate() {
        let mut chars = name.chars();
        let valid = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            p.push(
                tp.key("passEnv").index(i),
                "must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*)",
            );
        }
    }
    let http_only = [
        set(t.url.is_some(), "url"),
        set(t.headers.is_some(), "headers"),
        set(t.header_secrets.is_some(), "headerSecrets"),
    ];
    let kind = t.kind.as_deref();
    match kind {
        None => p.push(
            tp.key("type"),
            "is required (stdio, sse or streamable-http)",
        ),
        Some("stdio") => {
            if t.command.as_deref().is_none_or(str::is_empty) {
                p.push(tp.key("command"), "is required for stdio transport");
            }
            for key in http_only.iter().flatten() {
                p.push(tp.key(key), "is not allowed for stdio transport");
            }
            if oauth.is_some() {
                p.push(base.key("oauth"), "is not allowed for stdio transport");
            }
        }
        Some(kind @ ("sse" | "streamable-http")) => {
            match t.url.as_deref().filter(|u| !u.is_empty()) {
                None => p.push(tp.key("url"), format!("is required for {kind} transport")),
                Some(url) => {
                    if let Err(why) = https_or_loopback(url) {
                        p.push(tp.key("url"), why);
                    }
                }
            }
            for key in stdio_only.iter().flatten() {
                p.push(tp.key(key), format!("is not allowed for {kind} transport"));
            }
            if kind == "sse" && oauth.is_some() {
                p.push(base.key("oauth"), "is not allowed for sse transport");
            }
        }
        Some(_) => p.push(tp.key("type"), "must be one of stdio, sse, streamable-http"),
    }
    let is_auth = |k: &String| k.eq_ignore_ascii_case("authorization");
    if oauth.is_some() {
        for k in t
            .headers
            .iter()
            .flatten()
            .map(|(k, _)| k)
            .filter(|k| is_auth(k))
        {
            p.push(
                tp.key("headers").key(k),
                "is owned by oauth and cannot be set explicitly",
            );
        }
        for k in t
            .header_secrets
            .iter()
            .flatten()
            .map(|(k, _)| k)
            .filter(|k| is_auth(k))
        {
            p.push(
                tp.key("headerSecrets").key(k),
                "is owned by oauth and cannot be set explicitly",
            );
        }
    }
    for secret_header in t.header_secrets.iter().flatten().map(|(k, _)| k) {
        let clash = t
            .headers
            .iter()
            .flatten()
            .map(|(k, _)| k)
            .find(|k| k.eq_ignore_ascii_case(secret_header));
        if let Some(plain) = clash {
            p.push(
                tp.key("headerSecrets").key(secret_header),
                format!("duplicates transport.headers.{plain}"),
            );
        }
    }
}

fn oauth_rules(oauth: &Value, path: &JsonPath, p: &mut Problems) {
    let Some(obj) = oauth.as_object() else {
        p.push(path.clone(), "must be an object");
        return;
    };
    match obj.get("mode").and_then(Value::as_str) {
        Some("clientCredentials") => {}
        Some("openIdConnect") => p.push(path.key("mode"), "is not a direct oauth mode"),
        _ => p.push(
            path.key("mode"),
            "must be clientCredentials for mcp transport oauth",
        ),
    }
    let has = |k: &str| obj.get(k).is_some_and(|v| !v.is_null());
    for key in ["clientId", "clientSecret"] {
        if !has(key) {
            p.push(path.key(key), "is required for mcp transport oauth");
        }
    }
    if let Some(method) = obj.get("clientAuthMethod") {
        if let Err(why) = AuthMethod::parse(method.as_str().or(Some("?"))) {
            p.push(path.key("clientAuthMethod"), why);
        }
    }
    if let Some(storage) = obj.get("tokenStorage") {
        if !matches!(storage.as_str(), Some("instance" | "memory")) {
            p.push(path.key("tokenStorage"), "must be instance or memory");
        }
    }
    for key in ["issuer", "tokenURL"] {
        if let Some(url) = obj.get(key).and_then(Value::as_str) {
            if let Err(why) = https_or_loopback(url) {
                p.push(path.key(key), why);
            }
        }
    }
    if !has("issuer") && !has("tokenURL") {
        p.push(
            path.key("tokenURL"),
            "issuer or tokenURL is required for mcp transport oauth",
        );
    }
    for key in [
        "authorizationURL",
        "interactive",
        "callbackPort",
        "redirectURI",
    ] {
        if has(key) {
            p.push(
                path.key(key),
                "is not allowed for clientCredentials mcp transport oauth",
            );
        }
    }
    let known = [
        "mode",
        "issuer",
        "authorizationURL",
        "tokenURL",
        "clientId",
        "clientSecret",
        "scopes",
        "audience",
        "interactive",
        "callbackPort",
        "redirectURI",
        "tokenStorage",
        "clientAuthMethod",
    ];
    for key in obj.keys().filter(|k| !known.contains(&k.as_str())) {
        p.push(path.key(key), "unknown field");
    }
}
