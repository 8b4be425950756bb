//! Load-time checks of secret references: what `portcullis check` (and the server at each
//! config load) reports so that an operator learns about a missing variable before the
//! first call fails.
//!
//! | finding | severity | where |
//! |---|---|---|
//! | `exec` secret without `policy.allowExecSecrets: true` | error: the config is refused | `config::secret_rules` |
//! | malformed `osKeychain` reference, `timeoutMs` on another type | error: the config is refused | `config::secret_rules` |
//! | `env` variable unset or empty | warning | [`check`] |
//! | `file` missing, unreadable, not a regular file, empty or too large | warning (the file is read; its contents are never shown) | [`check`] |
//! | `file` readable by its group or by everyone | warning (the call still works) | [`check`] |
//! | `osKeychain` tool not on `PATH` | warning (the keychain itself is not queried: no prompt, no unlock) | [`check`] |
//! | `exec` program not found | warning (the program is never run at check time) | [`check`] |
//!
//! Why warnings: these are facts about the host the check runs on, not about the config; the
//! same config is valid on a host where the variable is set. They are reported with the
//! secret's JSON path and the reason, never a value. `portcullis check --strict` fails on
//! warnings too, for a check run on the serving host itself.

use crate::config::{Config, Diagnostic, Secret, SecretType};

use super::sources::{env, exec, file, keychain};

/// One warning per secret reference (including nested OAuth client references) that cannot be
/// resolved on this host right now.
pub fn check(config: &Config) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (key, secret) in config.secrets.iter().flatten() {
        let path = format!("secrets.{key}");
        visit(secret, &path, &mut out);
        if let Some(id) = &secret.client_id {
            visit(id, &format!("{path}.clientId"), &mut out);
        }
        if let Some(client_secret) = &secret.client_secret {
            visit(client_secret, &format!("{path}.clientSecret"), &mut out);
        }
    }
    out
}

fn visit(secret: &Secret, path: &str, out: &mut Vec<Diagnostic>) {
    let value = secret.value.as_deref().unwrap_or_default();
    let problem = match secret.kind {
        Some(SecretType::Env) => env::problem(value),
        Some(SecretType::File) => file::problem(value),
        Some(SecretType::OsKeychain) => keychain::problem(value),
        Some(SecretType::Exec) => exec::argv(secret)
            .ok()
            .and_then(|argv| exec::problem(&argv)),
        _ => None,
    };
    if let Some(problem) = problem {
        out.push(Diagnostic {
            file: None,
            path: path.to_owned(),
            message: format!("{problem}; calls that need this secret will fail"),
        });
    } else if let (Some(SecretType::File), Some(message)) =
        (secret.kind, file::loose_permissions(value))
    {
        out.push(Diagnostic {
            file: None,
            path: path.to_owned(),
            message,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unresolvable_references_are_warnings_naming_the_secret_and_never_a_value() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good");
        std::fs::write(&good, "CANARY-FILE\n").unwrap();
        let private = std::os::unix::fs::PermissionsExt::from_mode(0o600);
        std::fs::set_permissions(&good, private).unwrap();
        let config: Config = serde_json::from_value(serde_json::json!({
            "secrets": {
                "unset": { "type": "env", "value": "PORTCULLIS_PREFLIGHT_SURELY_UNSET" },
                "home": { "type": "env", "value": "PATH" },
                "missing": { "type": "file", "value": dir.path().join("nope").display().to_string() },
                "present": { "type": "file", "value": good.display().to_string() },
                "prog": { "type": "exec", "command": ["/nonexistent/helper", "CANARY-ARG"] },
                "sh": { "type": "exec", "command": ["sh", "-c", "exit 1"] },
                "lit": { "type": "literal", "value": "CANARY-LIT" },
                "client": { "type": "oauth2", "mode": "clientCredentials",
                            "clientId": { "type": "env", "value": "PORTCULLIS_PREFLIGHT_SURELY_UNSET_ID" } }
            }
        }))
        .unwrap();
        let found = check(&config);
        let paths: Vec<&str> = found.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "secrets.client.clientId",
                "secrets.missing",
                "secrets.prog",
                "secrets.unset"
            ]
        );
        let text = format!("{found:?}");
        assert!(!text.contains("CANARY"), "{text}");
        assert!(found[3]
            .message
            .contains("PORTCULLIS_PREFLIGHT_SURELY_UNSET is not set"));
    }
}
