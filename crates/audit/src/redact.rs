//! What of a call's arguments an audit record may hold.
//!
//! Rule (applied to the `arguments` member of `tool_execution_intent` records):
//! - a value is replaced by `"[REDACTED]"` when its name is sensitive: a flag name, a path
//!   parameter name (the caller passes the names in the order the arguments bind), or any object key at any depth of a JSON
//!   body, compared case-insensitively with `-`, `_`, `.` and spaces removed, that contains one
//!   of [`SENSITIVE`] (`password`, `token`, `secret`, `authorization`, `apikey`, ...);
//! - a string value that looks like a credential whatever its name (starts with `Bearer ` or
//!   `Basic `, or has the `eyJ...`.`...`.`...` shape of a JWT) is replaced the same way;
//! - strings longer than [`MAX_STRING`] characters keep their first [`MAX_STRING`] and say how
//!   much was cut; a body that is not JSON is recorded as its byte count only;
//! - if the whole `arguments` value still exceeds [`MAX_ARGUMENTS`] bytes it is replaced by
//!   `{"omitted":"too large","bytes":N}`.
//!
//! Tokens are never recorded; a record names the caller's token only by [`token_hash`]
//! (`HMAC-SHA256(audit key, "token:" || token)`, first 16 hex digits): equal for the same
//! token so calls can be correlated, useless for replay, and not brute-forceable without the key.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::chain::AuditKey;

/// Replacement for a sensitive value.
pub const REDACTED: &str = "[REDACTED]";
/// Longest string value kept (in characters).
pub const MAX_STRING: usize = 256;
/// Largest serialised `arguments` value kept (bytes).
pub const MAX_ARGUMENTS: usize = 4096;
/// Name fragments that make a value sensitive (matched on the normalised name).
pub const SENSITIVE: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "authorization",
    "apikey",
    "accesskey",
    "privatekey",
    "credential",
    "cookie",
    "session",
    "signature",
];

/// Whether a parameter or key name is sensitive (see the module rule).
pub fn sensitive_name(name: &str) -> bool {
    let normalised: String = name
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | '.' | ' '))
        .flat_map(char::to_lowercase)
        .collect();
    SENSITIVE.iter().any(|s| normalised.contains(s))
}

fn looks_like_credential(value: &str) -> bool {
    let lower = value.get(..6).unwrap_or_default().to_ascii_lowercase();
    if lower.starts_with("bearer") || lower.starts_with("basic ") {
        return true;
    }
    let parts: Vec<&str> = value.split('.').collect();
    value.starts_with("eyJ")
        && parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn string(value: &str) -> Value {
    if looks_like_credential(value) {
        return Value::String(REDACTED.into());
    }
    let count = value.chars().count();
    if count <= MAX_STRING {
        return Value::String(value.to_owned());
    }
    let kept: String = value.chars().take(MAX_STRING).collect();
    Value::String(format!("{kept}…[+{} chars]", count - MAX_STRING))
}

fn json(value: &Value) -> Value {
    match value {
        Value::String(s) => string(s),
        Value::Array(items) => Value::Array(items.iter().map(json).collect()),
        Value::Object(members) => Value::Object(
            members
                .iter()
                .map(|(k, v)| {
                    let v = if sensitive_name(k) {
                        Value::String(REDACTED.into())
                    } else {
                        json(v)
                    };
                    (string_key(k), v)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

fn string_key(key: &str) -> String {
    match string(key) {
        Value::String(s) => s,
        _ => REDACTED.into(),
    }
}

/// The `arguments` member of an intent record (see the module rule).
pub fn arguments(
    path_names: &[&str],
    path_args: &[String],
    flags: &BTreeMap<String, String>,
    body: Option<&[u8]>,
) -> Value {
    let mut out = Map::new();
    if !path_args.is_empty() {
        let values = path_args
            .iter()
            .enumerate()
            .map(|(i, v)| match path_names.get(i) {
                Some(name) if sensitive_name(name) => Value::String(REDACTED.into()),
                _ => string(v),
            })
            .collect();
        out.insert("pathArgs".into(), Value::Array(values));
    }
    if !flags.is_empty() {
        let values = flags
            .iter()
            .map(|(k, v)| {
                let v = if sensitive_name(k) {
                    Value::String(REDACTED.into())
                } else {
                    string(v)
                };
                (string_key(k), v)
            })
            .collect();
        out.insert("flags".into(), Value::Object(values));
    }
    if let Some(body) = body {
        let recorded = match serde_json::from_slice::<Value>(body) {
            Ok(value) => json(&value),
            Err(_) => serde_json::json!({ "bytes": body.len() }),
        };
        out.insert("body".into(), recorded);
    }
    let value = Value::Object(out);
    let size = serde_json::to_vec(&value).map_or(usize::MAX, |v| v.len());
    if size > MAX_ARGUMENTS {
        return serde_json::json!({ "omitted": "too large", "bytes": size });
    }
    value
}

/// The short keyed hash that stands for a bearer token in audit records.
pub fn token_hash(key: &AuditKey, token: &str) -> String {
    let mut mac = key.mac_hex(&[b"token:", token.as_bytes()]);
    mac.truncate(16);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_names_are_matched_after_normalising() {
        for name in [
            "password",
            "X-API-Key",
            "api_key",
            "apiKey",
            "client.secret",
            "Authorization",
            "refresh_token",
            "SESSION-ID",
            "privateKey",
        ] {
            assert!(sensitive_name(name), "{name}");
        }
        for name in ["q", "limit", "owner", "repo", "title", "body"] {
            assert!(!sensitive_name(name), "{name}");
        }
    }

    #[test]
    fn values_are_redacted_by_name_and_shape_and_capped() {
        let mut flags = BTreeMap::new();
        flags.insert("api_key".to_owned(), "CANARY-1".to_owned());
        flags.insert("q".to_owned(), "hello".to_owned());
        flags.insert("note".to_owned(), "Bearer CANARY-2".to_owned());
        let body = serde_json::json!({
            "user": "ann",
            "nested": [{ "Client-Secret": "CANARY-3" }],
            "jwt": "eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl",
            "long": "x".repeat(300),
        });
        let value = arguments(
            &["userId", "apiToken"],
            &["u1".into(), "CANARY-4".into()],
            &flags,
            Some(&serde_json::to_vec(&body).unwrap()),
        );
        let text = value.to_string();
        for canary in ["CANARY-1", "CANARY-2", "CANARY-3", "CANARY-4", "eyJhbGciOi"] {
            assert!(!text.contains(canary), "{canary} in {text}");
        }
        assert_eq!(value["pathArgs"], serde_json::json!(["u1", REDACTED]));
        assert_eq!(value["flags"]["q"], "hello");
        assert_eq!(value["body"]["user"], "ann");
        assert!(value["body"]["long"]
            .as_str()
            .unwrap()
            .ends_with("…[+44 chars]"));
        let binary = arguments(&[], &[], &BTreeMap::new(), Some(&[0xff, 0, 1]));
        assert_eq!(binary["body"], serde_json::json!({ "bytes": 3 }));
        let many: BTreeMap<String, String> = (0..100)
            .map(|i| (format!("k{i}"), "v".repeat(100)))
            .collect();
        assert_eq!(arguments(&[], &[], &many, None)["omitted"], "too large");
    }

    #[test]
    fn token_hash_is_keyed_short_and_stable() {
        let a = AuditKey::from_bytes(&[1; 32]);
        let b = AuditKey::from_bytes(&[2; 32]);
        assert_eq!(token_hash(&a, "t").len(), 16);
        assert_eq!(token_hash(&a, "t"), token_hash(&a, "t"));
        assert_ne!(token_hash(&a, "t"), token_hash(&b, "t"));
        assert_ne!(token_hash(&a, "t"), token_hash(&a, "u"));
    }
}
