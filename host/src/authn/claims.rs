//! From validated claims to a caller: principal, scopes, lineage, time checks.
//!
//! Rule: principal = `sub`, else `client:` + `client_id` (neither -> invalid; a `sub` starting
//! with `client:` -> invalid), so users and clients live in separate namespaces. Scopes come from the one
//! claim the settings name: `scope` (a space-separated string) or `scp` (an array of strings
//! whose elements must not contain spaces, so `["tool:a tool:admin"]` cannot smuggle a second
//! scope). When both claims are present and disagree the token is invalid; they are never
//! unioned. Lineage (`act`, possibly nested per RFC 8693, `delegated_by`, `delegation_id`) is
//! kept for audit only and never grants anything.
//!
//! Time claims: `exp` is required; `exp`, `nbf` and `iat` must be JSON numbers when present (a
//! string or boolean is invalid, never "absent"); `exp <= now - leeway`, `nbf > now + leeway`,
//! `iat > now + leeway` and `iat > exp` are rejected. An introspection answer may omit `exp`
//! (RFC 7662); its `nbf` and `iat` are still checked ([`check_start`]).

use serde_json::{Map, Value};

/// Which claim carries scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeClaim {
    /// `scope`: space-separated string.
    Scope,
    /// `scp`: array of strings.
    Scp,
}

fn split_scope(text: &str) -> Vec<String> {
    text.split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn scp_list(value: &Value) -> Result<Vec<String>, &'static str> {
    match value {
        Value::Array(items) => items
            .iter()
            .map(|item| match item.as_str() {
                Some(s) if !s.is_empty() && !s.contains(char::is_whitespace) => Ok(s.to_owned()),
                _ => Err("scp element is not a single scope"),
            })
            .collect(),
        // Some issuers (Azure AD v1) send `scp` as a string; accept it as the space form.
        Value::String(s) => Ok(split_scope(s)),
        _ => Err("scp is not an array of strings"),
    }
}

fn scope_string(value: &Value) -> Result<Vec<String>, &'static str> {
    value
        .as_str()
        .map(split_scope)
        .ok_or("scope is not a string")
}

/// The caller's scopes, per the rules above.
pub fn scopes(claims: &Map<String, Value>, claim: ScopeClaim) -> Result<Vec<String>, &'static str> {
    let scope = claims.get("scope").map(scope_string).transpose()?;
    let scp = claims.get("scp").map(scp_list).transpose()?;
    if let (Some(a), Some(b)) = (&scope, &scp) {
        let (mut a, mut b) = (a.clone(), b.clone());
        a.sort();
        b.sort();
        if a != b {
            return Err("scope and scp disagree");
        }
    }
    Ok(match claim {
        ScopeClaim::Scope => scope,
        ScopeClaim::Scp => scp,
    }
    .unwrap_or_default())
}

/// What a principal taken from `client_id` (a token without `sub`) starts with, so that a
/// client named `alice` and a user `alice` are never the same principal (grants, OAuth tokens
/// kept per principal, audit queries).
pub const CLIENT_PRINCIPAL_PREFIX: &str = "client:";

/// What the principal of an introspected token with neither `sub` nor `client_id` starts with
/// (`oauth2_introspection` only; see `introspection.rs`). Reserved like the client prefix.
pub const INTROSPECTED_PRINCIPAL_PREFIX: &str = "introspected:";

fn text<'a>(claims: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    claims
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Whether the claims name a subject or a client (a non-empty `sub` or `client_id`).
pub fn has_identity(claims: &Map<String, Value>) -> bool {
    text(claims, "sub").is_some() || text(claims, "client_id").is_some()
}

/// `sub`, else [`CLIENT_PRINCIPAL_PREFIX`] + `client_id`. A `sub` that itself starts with a
/// reserved prefix ([`CLIENT_PRINCIPAL_PREFIX`], [`INTROSPECTED_PRINCIPAL_PREFIX`]) is refused
/// rather than allowed to pass for a client or an anonymous token.
pub fn principal(claims: &Map<String, Value>) -> Result<String, &'static str> {
    if let Some(sub) = text(claims, "sub") {
        if sub.starts_with(CLIENT_PRINCIPAL_PREFIX) {
            return Err("sub uses the prefix reserved for client principals");
        }
        if sub.starts_with(INTROSPECTED_PRINCIPAL_PREFIX) {
            return Err("sub uses the prefix reserved for tokens without identity");
        }
        return Ok(sub.to_owned());
    }
    text(claims, "client_id")
        .map(|client| format!("{CLIENT_PRINCIPAL_PREFIX}{client}"))
        .ok_or("token has neither sub nor client_id")
}

/// Delegation lineage for audit, or `None` when the token carries none. Named as the reference
/// runtime's audit records name it (its consumers read these): claim `act` -> `actor`,
/// `delegated_by` -> `delegatedBy`, `delegation_id` -> `delegationId`.
pub fn lineage(claims: &Map<String, Value>) -> Option<Value> {
    let mut out = Map::new();
    for (claim, key) in [
        ("act", "actor"),
        ("delegated_by", "delegatedBy"),
        ("delegation_id", "delegationId"),
    ] {
        match claims.get(claim) {
            Some(Value::String(s)) if !s.is_empty() => {
                out.insert(key.to_owned(), Value::String(s.clone()));
            }
            Some(Value::Object(o)) if claim == "act" && !o.is_empty() => {
                out.insert(key.to_owned(), Value::Object(bounded(o, 0)));
            }
            _ => {}
        }
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

/// Copy an `act` chain, keeping string members and nested `act` up to a sane depth.
fn bounded(act: &Map<String, Value>, depth: usize) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in act {
        match v {
            Value::String(_) => {
                out.insert(k.clone(), v.clone());
            }
            Value::Object(inner) if k == "act" && depth < 8 => {
                out.insert(k.clone(), Value::Object(bounded(inner, depth + 1)));
            }
            _ => {}
        }
    }
    out
}

fn number(claims: &Map<String, Value>, key: &'static str) -> Result<Option<f64>, &'static str> {
    match claims.get(key) {
        None => Ok(None),
        Some(Value::Number(n)) => n.as_f64().filter(|f| f.is_finite()).map(Some).ok_or(key),
        Some(_) => Err(key),
    }
}

/// Check `exp`, `nbf`, `iat` (and the optional maximum lifetime) against `now`.
pub fn check_times(
    claims: &Map<String, Value>,
    now: u64,
    leeway: u64,
    max_lifetime: Option<u64>,
) -> Result<(), &'static str> {
    let now = now as f64;
    let leeway = leeway as f64;
    let exp = number(claims, "exp")
        .map_err(|_| "exp is not a number")?
        .ok_or("exp is missing")?;
    if exp <= now - leeway {
        return Err("token expired");
    }
    if let Some(max) = max_lifetime {
        if exp - now > max as f64 + leeway {
            return Err("token lifetime exceeds the configured maximum");
        }
    }
    check_not_before(claims, now, leeway, Some(exp))
}

/// `nbf` and `iat` alone: what still holds for an introspection answer without `exp`.
pub fn check_start(claims: &Map<String, Value>, now: u64, leeway: u64) -> Result<(), &'static str> {
    check_not_before(claims, now as f64, leeway as f64, None)
}

fn check_not_before(
    claims: &Map<String, Value>,
    now: f64,
    leeway: f64,
    exp: Option<f64>,
) -> Result<(), &'static str> {
    if let Some(nbf) = number(claims, "nbf").map_err(|_| "nbf is not a number")? {
        if nbf > now + leeway {
            return Err("token not yet valid");
        }
    }
    if let Some(iat) = number(claims, "iat").map_err(|_| "iat is not a number")? {
        if iat > now + leeway {
            return Err("token issued in the future");
        }
        if exp.is_some_and(|exp| iat > exp) {
            return Err("token issued after it expires");
        }
    }
    Ok(())
}

/// `aud` must be a string or a non-empty array of strings containing `audience`.
pub fn check_audience(claims: &Map<String, Value>, audience: &str) -> Result<(), &'static str> {
    let ok = match claims.get("aud") {
        Some(Value::String(s)) => s == audience,
        Some(Value::Array(items)) => {
            items.iter().all(Value::is_string) && items.iter().any(|v| v.as_str() == Some(audience))
        }
        _ => false,
    };
    ok.then_some(()).ok_or("audience mismatch")
}

/// `iss` must equal the configured issuer byte for byte.
pub fn check_issuer(claims: &Map<String, Value>, issuer: &str) -> Result<(), &'static str> {
    (claims.get("iss").and_then(Value::as_str) == Some(issuer))
        .then_some(())
        .ok_or("issuer mismatch")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn scp_elements_with_spaces_and_disagreeing_claims_are_invalid() {
        assert!(scopes(&map(json!({"scp": ["tool:a tool:admin"]})), ScopeClaim::Scp).is_err());
        assert!(scopes(
            &map(json!({"scope": "tool:a", "scp": ["tool:b"]})),
            ScopeClaim::Scope
        )
        .is_err());
        assert_eq!(
            scopes(
                &map(json!({"scope": "tool:a  bundle:x"})),
                ScopeClaim::Scope
            )
            .unwrap(),
            vec!["tool:a", "bundle:x"]
        );
        assert!(scopes(&map(json!({"scope": ["tool:a"]})), ScopeClaim::Scope).is_err());
        assert!(scopes(&map(json!({})), ScopeClaim::Scope)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn time_claims_of_the_wrong_type_are_invalid_not_absent() {
        let now = 1_000_000;
        assert!(check_times(&map(json!({"exp": now + 100})), now, 60, None).is_ok());
        assert!(check_times(&map(json!({"exp": "99999999999"})), now, 60, None).is_err());
        assert!(check_times(&map(json!({"exp": true})), now, 60, None).is_err());
        assert!(check_times(&map(json!({})), now, 60, None).is_err());
        assert!(check_times(&map(json!({"exp": now + 100, "nbf": "0"})), now, 60, None).is_err());
        assert!(check_times(
            &map(json!({"exp": now + 100, "iat": now + 61})),
            now,
            60,
            None
        )
        .is_err());
        assert!(check_times(
            &map(json!({"exp": now + 100, "nbf": now + 61})),
            now,
            60,
            None
        )
        .is_err());
        assert!(check_times(&map(json!({"exp": now - 60})), now, 60, None).is_err());
        assert!(check_times(&map(json!({"exp": now - 59})), now, 60, None).is_ok());
        assert!(check_times(&map(json!({"exp": now + 10_000})), now, 0, Some(3600)).is_err());
    }

    #[test]
    fn audience_must_be_strings_containing_ours() {
        assert!(check_audience(&map(json!({"aud": ["x", "api"]})), "api").is_ok());
        for bad in [
            json!({"aud": []}),
            json!({"aud": 42}),
            json!({}),
            json!({"aud": "x"}),
        ] {
            assert!(check_audience(&map(bad), "api").is_err());
        }
    }

    #[test]
    fn users_and_clients_are_separate_principals() {
        assert_eq!(principal(&map(json!({"sub": "alice"}))).unwrap(), "alice");
        assert_eq!(
            principal(&map(json!({"client_id": "alice"}))).unwrap(),
            "client:alice",
            "a client named alice is not the user alice"
        );
        assert_eq!(
            principal(&map(json!({"sub": "alice", "client_id": "app"}))).unwrap(),
            "alice"
        );
        assert!(principal(&map(json!({"sub": "client:alice"}))).is_err());
        assert!(principal(&map(json!({"sub": "", "client_id": ""}))).is_err());
    }

    #[test]
    fn start_claims_are_checked_without_exp() {
        let now = 1_000_000;
        assert!(check_start(&map(json!({})), now, 60).is_ok());
        assert!(check_start(&map(json!({"nbf": now + 61})), now, 60).is_err());
        assert!(check_start(&map(json!({"iat": now + 61})), now, 60).is_err());
        assert!(check_start(&map(json!({"iat": "0"})), now, 60).is_err());
        assert!(check_start(&map(json!({"nbf": now, "iat": now - 5})), now, 60).is_ok());
    }

    #[test]
    fn nested_act_is_kept_as_lineage() {
        let l = lineage(&map(
            json!({"act": {"sub": "a", "act": {"sub": "b"}}, "delegation_id": "d"}),
        ))
        .unwrap();
        assert_eq!(l["actor"]["act"]["sub"], "b");
        assert_eq!(l["delegationId"], "d");
        assert!(l.get("act").is_none() && l.get("delegation_id").is_none());
    }
}
