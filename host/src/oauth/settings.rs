//! OAuth client settings: `runtime.remote.oauth`, how a client of a remote runtime gets its
//! token (`providedToken`, `oauthClient`, `browserLogin`).
//!
//! Rule: `runtime.remote` is client-side; only the rules the client relies on are enforced
//! (the fields each mode needs). Default: no `mode` means `browserLogin`. Failure mode: one
//! problem per missing field or unknown mode.

use serde_json::Value;

use crate::config::{Config, JsonPath, Problems};

/// Check `runtime.remote`.
pub fn check(config: &Config, p: &mut Problems) {
    let remote = config.runtime.as_ref().and_then(|r| r.remote.as_ref());
    if let Some(remote) = remote {
        remote_rules(remote, &JsonPath::of(&["runtime", "remote"]), p);
    }
}

fn remote_rules(remote: &Value, path: &JsonPath, p: &mut Problems) {
    let Some(oauth) = remote.get("oauth") else {
        return;
    };
    let path = path.key("oauth");
    let has = |v: &Value, k: &str| v.get(k).is_some_and(|x| !x.is_null());
    match oauth.get("mode").and_then(Value::as_str) {
        Some("providedToken") => {
            if !has(oauth, "tokenRef") {
                p.push(path.key("tokenRef"), "is required for providedToken");
            }
            let delegation = oauth.get("delegation");
            let enabled = delegation
                .and_then(|d| d.get("enabled"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if enabled && !delegation.is_some_and(|d| has(d, "tokenExchangeURL")) {
                p.push(
                    path.key("delegation").key("tokenExchangeURL"),
                    "is required when delegation is enabled",
                );
            }
        }
        Some("oauthClient") => match oauth.get("client") {
            None => p.push(path.key("client"), "is required for oauthClient"),
            Some(client) => {
                for key in ["tokenURL", "clientId", "clientSecret"] {
                    if !has(client, key) {
                        p.push(path.key("client").key(key), "is required for oauthClient");
                    }
                }
            }
        },
        Some("browserLogin") | None => {}
        Some(_) => p.push(
            path.key("mode"),
            "must be one of providedToken, oauthClient, browserLogin",
        ),
    }
}
