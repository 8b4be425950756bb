//! Secret settings: `secrets.*` shapes, checked on the merged config.
//!
//! | `type` | needs |
//! |---|---|
//! | `env`, `file`, `literal` | `value` |
//! | `osKeychain` | `value`: `attr=value ...` or `service/account` (parsed here, so a typo fails at load) |
//! | `exec` | `command` (non-empty argv) or `value`, **and** `policy.allowExecSecrets: true` |
//! | `plugin` | `plugin` and `value` |
//! | `oauth2` | `mode` (`clientCredentials` or `authorizationCode`), `clientId`, and `clientSecret` for `clientCredentials` |
//!
//! An oauth2 entry's `issuer`, `tokenURL` and `authorizationURL` must be `https` (plain
//! `http` to a loopback host only), the rule of `runtime.server.auth` URLs.
//! `timeoutMs` is accepted on `exec` and `osKeychain` only. `clientId` / `clientSecret` of an oauth2 entry are secret references checked by the same
//! rules (and may not themselves be oauth2). The implicit and password flows are refused by
//! name. Failure mode: one problem per violated rule; no secret value is ever quoted.

use super::sources::keychain::Reference;
use crate::config::{Config, JsonPath, Problems, Secret, SecretType};
use crate::net::https_or_loopback;

/// Check every `secrets.*` entry.
pub fn check(config: &Config, p: &mut Problems) {
    let exec_allowed = config
        .policy
        .as_ref()
        .and_then(|policy| policy.allow_exec_secrets)
        .unwrap_or(false);
    let rules = Rules { exec_allowed };
    for (key, secret) in config.secrets.iter().flatten() {
        rules.secret(secret, &JsonPath::of(&["secrets", key]), true, p);
    }
}

struct Rules {
    exec_allowed: bool,
}

fn non_empty(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|s| !s.is_empty())
}

impl Rules {
    fn secret(&self, secret: &Secret, path: &JsonPath, allow_oauth: bool, p: &mut Problems) {
        let Some(kind) = secret.kind else {
            p.push(path.key("type"), "is required");
            return;
        };
        if secret.timeout_ms.is_some() && !matches!(kind, SecretType::Exec | SecretType::OsKeychain)
        {
            p.push(
                path.key("timeoutMs"),
                "applies to exec and osKeychain secrets only",
            );
        }
        match kind {
            SecretType::Env | SecretType::File | SecretType::Literal => {
                if !non_empty(&secret.value) {
                    p.push(path.key("value"), "is required");
                }
            }
            SecretType::OsKeychain => match secret.value.as_deref() {
                None | Some("") => p.push(path.key("value"), "is required"),
                Some(reference) => {
                    if let Err(e) = Reference::parse(reference) {
                        p.push(path.key("value"), e.to_string());
                    }
                }
            },
            SecretType::Exec => {
                if !self.exec_allowed {
                    p.push(
                    path.key("type"),
                    "exec secrets run a program and are refused unless policy.allowExecSecrets is true",
                );
                }
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
            SecretType::Oauth2 => self.oauth2(secret, path, p),
        }
    }

    fn oauth2(&self, secret: &Secret, path: &JsonPath, p: &mut Problems) {
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
        let urls = [
            ("issuer", &secret.issuer),
            ("tokenURL", &secret.token_url),
            ("authorizationURL", &secret.authorization_url),
        ];
        for (key, url) in urls {
            if let Some(Err(why)) = url.as_deref().map(https_or_loopback) {
                p.push(path.key(key), why);
            }
        }
        match &secret.client_id {
            None => p.push(path.key("clientId"), "is required for oauth2 secrets"),
            Some(id) => self.secret(id, &path.key("clientId"), false, p),
        }
        match &secret.client_secret {
            Some(client_secret) => self.secret(client_secret, &path.key("clientSecret"), false, p),
            None if secret.mode.as_deref() == Some("clientCredentials") => p.push(
                path.key("clientSecret"),
                "is required for clientCredentials oauth2 secrets",
            ),
            None => {}
        }
    }
}
