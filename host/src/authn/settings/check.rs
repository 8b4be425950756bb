//! The load-time check of `runtime.server.auth`: its basic shape (a known validation profile,
//! `audience`, and what the profile needs), so a broken block is refused with the other config
//! problems; the full typed read ([`super::ServerAuth::from_value`]) happens when the runtime
//! builds its authenticator. Whether a named `plugin` exists is a plugin rule.

use serde_json::Value;

use crate::config::{Config, JsonPath, Problems};

/// Check `runtime.server.auth`.
pub fn check(config: &Config, p: &mut Problems) {
    let auth = config
        .runtime
        .as_ref()
        .and_then(|r| r.server.as_ref())
        .and_then(|s| s.auth.as_ref());
    if let Some(auth) = auth {
        auth_rules(auth, &JsonPath::of(&["runtime", "server", "auth"]), p);
    }
}

fn auth_rules(auth: &Value, path: &JsonPath, p: &mut Problems) {
    let Some(obj) = auth.as_object() else {
        p.push(path.clone(), "must be an object");
        return;
    };
    let profile = obj.get("validationProfile");
    let legacy = obj.get("mode");
    match (profile, legacy) {
        (Some(Value::String(s)), _)
            if matches!(s.as_str(), "oidc_jwks" | "oauth2_introspection" | "plugin") => {}
        (Some(_), _) => p.push(
            path.key("validationProfile"),
            "must be one of oidc_jwks, oauth2_introspection, plugin",
        ),
        (None, Some(Value::String(m))) if m == "oauth2Introspection" => {}
        (None, Some(_)) => p.push(
            path.key("mode"),
            "legacy mode must be oauth2Introspection; use validationProfile instead",
        ),
        (None, None) => p.push(
            path.key("validationProfile"),
            "is required when runtime.server.auth is configured (oidc_jwks or oauth2_introspection)",
        ),
    }
    let effective = match (
        profile.and_then(Value::as_str),
        legacy.and_then(Value::as_str),
    ) {
        (Some(s), _) => s,
        (None, Some("oauth2Introspection")) => "oauth2_introspection",
        _ => "",
    };
    let present = |k: &str| {
        obj.get(k)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    if !present("audience") {
        p.push(
            path.key("audience"),
            "runtime.server.auth.audience is required when runtime auth is configured",
        );
    }
    let needs: &[&str] = match effective {
        // jwksURL is optional: without it the keys are found by OIDC discovery from issuer.
        "oidc_jwks" => &["issuer"],
        "oauth2_introspection" => &["introspectionURL"],
        // The plugin's name; that it exists and is an auth profile is checked by plugin rules.
        "plugin" => &["plugin"],
        _ => &[],
    };
    for key in needs {
        if !present(key) {
            p.push(path.key(key), format!("is required for {effective}"));
        }
    }
}
