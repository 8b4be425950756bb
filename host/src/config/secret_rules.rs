//! `secrets.*` shapes, checked on the merged config.
//!
//! | `type` | needs |
//! |---|---|
//! | `env`, `file`, `osKeychain`, `literal` | `value` |
//! | `exec` | `command` (non-empty argv) or `value` |
//! | `plugin` | `plugin` and `value` |
//! | `oauth2` | `mode` (`clientCredentials` or `authorizationCode`), `clientId`, and `clientSecret` for `clientCredentials` |
//!
//! `clientId` / `clientSecret` of an oauth2 entry are secret references checked by the same
//! rules (and may not themselves be oauth2). The implicit and password flows are refused by
//! name. Failure mode: one problem per violated rule; no secret value is ever quoted.

use super::model::{Config, Secret, SecretType};
use super::path::JsonPath;
use super::validate::Problems;

/// Check every `secrets.*` entry.
pub(crate) fn check(config: &Config, p: &mut Problems) {
    for (key, secret) in config.secrets.iter().flatten() {
        secret_rules(secret, &JsonPath::of(&["secrets", key]), true, p);
    }
}

fn non_empty(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|s| !s.is_empty())
}

fn secret_rules(secret: &Secret, path: &JsonPath, allow_oauth: bool, p: &mut Problems) {
    let Some(kind) = secret.kind else {
        p.push(path.key("type"), "is required");
        return;
    };
    match kind {
        SecretType::Env | SecretType::File | SecretType::OsKeychain | SecretType::Literal => {
            if !non_empty(&secret.value) {
                p.push(path.key("value"), "is required");
            }
        }
        SecretType::Exec => {
            let argv_ok = secret
                .command
                .as_ref()
                .is_some_and(|c| c.first().is_some_and(|prog| !prog.is_empty()));
            if secret.command.is_some() && !argv_ok {
                p.push(path.key("command"), "must be a non-empty argv");
            } else if !argv_ok && !non_empty(&secret.value) {
                p.push(
                    path.key("command"),
                    "command or value is required for exec secrets",
                );
            }
        }
        SecretType::Plugin => {
            if !non_empty(&secret.plugin) {
                p.push(path.key("plugin"), "is required for plugin secrets");
            }
            if !non_empty(&secret.value) {
                p.push(path.key("value"), "is required for plugin secrets");
            }
        }
        SecretType::Oauth2 if !allow_oauth => {
            p.push(
                path.key("type"),
                "must be a static secret reference, not oauth2",
            );
        }
        SecretType::Oauth2 => oauth2_rules(secret, path, p),
    }
}

fn oauth2_rules(secret: &Secret, path: &JsonPath, p: &mut Problems) {
    match secret.mode.as_deref() {
        Some("clientCredentials" | "authorizationCode") => {}
        Some(flow @ ("implicit" | "password")) => p.push(
            path.key("mode"),
            format!(
                "the OAuth 2.0 {flow} flow is not supported; use clientCredentials or authorizationCode"
            ),
        ),
        Some(_) => p.push(
            path.key("mode"),
            "must be clientCredentials or authorizationCode",
        ),
        None => p.push(
            path.key("mode"),
            "is required for oauth2 secrets (clientCredentials or authorizationCode)",
        ),
    }
    match &secret.client_id {
        None => p.push(path.key("clientId"), "is required for oauth2 secrets"),
        Some(id) => secret_rules(id, &path.key("clientId"), false, p),
    }
    match &secret.client_secret {
        Some(client_secret) => secret_rules(client_secret, &path.key("clientSecret"), false, p),
        None if secret.mode.as_deref() == Some("clientCredentials") => p.push(
            path.key("clientSecret"),
            "is required for clientCredentials oauth2 secrets",
        ),
        None => {}
    }
}
